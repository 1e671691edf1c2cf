import type { Logger } from "../../src/observability/index.js";
import type { Reconciler, ReconcileResult } from "../../src/reconcile/index.js";
import { type Condition, conditionsFor, type Summary, sameStatus } from "../common/status.js";
import { PLATFORM_FINALIZER, type PlatformObject, type PlatformSource } from "./source.js";
import type { PlatformSyncPort } from "./sync.js";

/** How long a deletion held by a pool in use waits before looking again. */
const IN_USE_RECHECK_MS = 5_000;
/** An object waiting for another (`DependencyMissing`) looks again after this, doubling… */
const WAIT_FIRST_RECHECK_MS = 250;
/** …up to this. */
const WAIT_MAX_RECHECK_MS = 5_000;

/**
 * One pass over a platform object (`<Kind>/<name>`): validate it, sync it into the platform and
 * inventory contexts, and write kstatus conditions — `Ready`, `Reconciling` while it waits (for a
 * datacenter it names, or for what still uses it before deletion), `Stalled` when only a change
 * to the object can help (an invalid spec, an overlap) with the field named. In a cluster a
 * finalizer holds the object until the platform no longer depends on it.
 *
 * Such outcomes are expected, not errors: the pass ends normally (a waiting object is looked at
 * again on its own backoff, a stalled one when it changes), and each is logged once per object
 * and reason, without a stack — info while it waits, warn when someone must change it — and once
 * more, at info, when it is Ready again.
 */
export class PlatformReconciler implements Reconciler {
  readonly #source: PlatformSource;
  readonly #sync: PlatformSyncPort;
  readonly #now: () => Date;
  /** Per key, the condition last logged (`<phase> <reason>`). */
  readonly #reported = new Map<string, string>();
  /** Per key, how many passes in a row found it waiting: the next look backs off. */
  readonly #waits = new Map<string, number>();

  constructor(source: PlatformSource, sync: PlatformSyncPort, now: () => Date = () => new Date()) {
    this.#source = source;
    this.#sync = sync;
    this.#now = now;
  }

  async reconcile(key: string, log: Logger): Promise<ReconcileResult | undefined> {
    const slash = key.indexOf("/");
    const kind = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const object = this.#source.get(kind, name);
    if (!object) {
      // Gone from a directory: the platform forgets it, unless something still uses it.
      if (this.#source.holdsDeletion) {
        this.#forget(key);
        return undefined;
      }
      const removed = await this.#sync.remove(kind, name);
      if (!removed.ok) {
        this.#report(key, log, {
          phase: "reconciling",
          reason: removed.reason,
          message: `${key} was removed, but ${removed.message}`,
        });
        return { requeueAfterMs: IN_USE_RECHECK_MS };
      }
      this.#forget(key);
      log.info("removed from the platform configuration");
      return undefined;
    }
    if (object.deleting) return this.#delete(key, object, log);
    if (this.#source.holdsDeletion && !object.finalizers.includes(PLATFORM_FINALIZER)) {
      // The update this makes comes back through the watch and queues the key again.
      await this.#source.setFinalizer(object, true);
      return undefined;
    }

    const result = await this.#sync.apply({
      kind,
      name,
      generation: object.generation,
      spec: object.spec,
    });
    const summary: Summary = result.ok
      ? { phase: "ready", message: `generation ${object.generation} is applied` }
      : result.retry
        ? { phase: "reconciling", reason: result.reason, message: result.message }
        : { phase: "stalled", reason: result.reason, message: result.message };
    const fields = result.ok ? result.status : kindFields(object.status);
    await this.#writeStatus(object, summary, fields);
    this.#report(key, log, summary);
    if (summary.phase !== "reconciling") {
      this.#waits.delete(key);
      return undefined; // Ready, or Stalled until the object changes
    }
    const waits = this.#waits.get(key) ?? 0;
    this.#waits.set(key, waits + 1);
    return { requeueAfterMs: Math.min(WAIT_MAX_RECHECK_MS, WAIT_FIRST_RECHECK_MS * 2 ** waits) };
  }

  async #delete(
    key: string,
    object: PlatformObject,
    log: Logger,
  ): Promise<ReconcileResult | undefined> {
    if (!object.finalizers.includes(PLATFORM_FINALIZER)) return undefined;
    const removed = await this.#sync.remove(object.kind, object.name);
    if (!removed.ok) {
      const summary: Summary = {
        phase: "reconciling",
        reason: removed.reason,
        message: `deletion waits: ${removed.message}`,
      };
      // What holds it, read afresh: the status of its last apply may predate its users.
      await this.#writeStatus(object, summary, {
        ...kindFields(object.status),
        ...removed.status,
      });
      this.#report(key, log, summary);
      return { requeueAfterMs: IN_USE_RECHECK_MS };
    }
    await this.#source.setFinalizer(object, false);
    this.#forget(key);
    log.info("deleted from the platform");
    return undefined;
  }

  /** Logs an outcome once per key and reason; Ready only after something else was logged. */
  #report(key: string, log: Logger, summary: Summary): void {
    const seen = this.#reported.get(key);
    if (summary.phase === "ready") {
      this.#reported.delete(key);
      if (seen !== undefined) log.info(summary.message);
      return;
    }
    const verdict = `${summary.phase} ${summary.reason}`;
    if (seen === verdict) return;
    this.#reported.set(key, verdict);
    const fields = { phase: summary.phase, reason: summary.reason };
    if (summary.phase === "stalled") log.warn(fields, summary.message);
    else log.info(fields, summary.message);
  }

  #forget(key: string): void {
    this.#reported.delete(key);
    this.#waits.delete(key);
  }

  async #writeStatus(
    object: PlatformObject,
    summary: Summary,
    fields: Record<string, unknown>,
  ): Promise<void> {
    const previous = Array.isArray(object.status.conditions)
      ? (object.status.conditions as Condition[])
      : [];
    const status = {
      ...fields,
      observedGeneration: object.generation,
      conditions: conditionsFor(summary, previous, object.generation, this.#now()),
    };
    if (sameStatus(status, object.status)) return;
    await this.#source.writeStatus(object, status);
    await this.#sync
      .recordStatus(object.kind, object.name, status, object.generation)
      .catch((err: unknown) => {
        // A refused spec was never recorded: nothing to attach the status to.
        if ((err as { code?: unknown }).code !== "DV_NOT_FOUND") throw err;
      });
  }
}

/** The kind's own status fields, without what every status has. */
function kindFields(status: Record<string, unknown>): Record<string, unknown> {
  const { conditions: _c, observedGeneration: _g, ...rest } = status;
  return rest;
}
