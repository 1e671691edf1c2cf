import type { FastifyInstance } from "fastify";
import { ApiFacade, registerApi, TaskWatcher } from "../api/index.js";
import { createTokenVerifier, type TokenVerifier } from "../auth/index.js";
import { SigningKeyStore } from "../contexts/runtime/index.js";
import type { Config } from "../config/index.js";
import type { Database } from "../db/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { newId } from "../kernel/index.js";
import type { Logger, Registry } from "../observability/index.js";

/** Options of {@link mountApi}. */
export interface MountApiOptions {
  readonly app: FastifyInstance;
  readonly config: Config;
  readonly db: Database;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly lifecycle: Lifecycle;
  /** Only `dv dev` may verify tokens with (and create) the development key. */
  readonly allowDevKey: boolean;
}

/** Wires the public API onto an HTTP server: facade, token verifier, task watcher, routes. */
export async function mountApi(
  options: MountApiOptions,
): Promise<{ facade: ApiFacade; verifier: TokenVerifier }> {
  const { config, log } = options;
  const facade = new ApiFacade({
    db: options.db,
    newId,
    now: () => new Date(),
    admissionTtlMs: config.api.admissionCacheMs,
  });
  const verifier = await createTokenVerifier(config.auth, options.allowDevKey);
  log.info(
    { keys: verifier.keySource, issuer: config.auth.issuer, audience: config.auth.audience },
    "verifying bearer tokens",
  );
  try {
    // Another process's deletion of a tenant or project is forgotten here as soon as it commits.
    options.lifecycle.add("tenancy-follower", await facade.scope.follow());
  } catch (err) {
    log.warn(
      { err },
      "cannot follow deletions of tenants and projects; this process takes a deleted one as existing for up to a minute",
    );
  }
  try {
    // Resources read by id are answered from memory until a change of theirs is announced.
    options.lifecycle.add("resource-reads", await facade.resourceReads.follow());
  } catch (err) {
    log.warn(
      { err },
      "cannot follow changes of resources (LISTEN refused); every read of a resource goes to the database",
    );
  }
  const watcher = new TaskWatcher(options.db, log.child({ component: "task-watcher" }));
  await watcher.start();
  options.lifecycle.add("task-watcher", () => watcher.stop());
  // The key of list cursors: made by the first API process of the database, shared by every
  // other, so a cursor one replica gave out is good at the next.
  const cursorKey = await new SigningKeyStore(options.db).get("api-cursors");
  if (!cursorKey) {
    log.warn(
      "the database is read-only and holds no cursor key yet: this process signs list cursors with a key of its own, which other API processes refuse",
    );
  }
  await registerApi(options.app, {
    facade,
    verifier,
    watcher,
    metrics: options.metrics,
    rateLimit: { max: config.api.rateLimit, windowMs: config.api.rateWindowMs },
    idempotencyTtlHours: config.api.idempotencyTtlHours,
    ...(cursorKey ? { cursorKey } : {}),
  });
  return { facade, verifier };
}
