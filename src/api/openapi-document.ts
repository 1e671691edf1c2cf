import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import Fastify from "fastify";
import { Registry } from "prom-client";
import { createTokenVerifier } from "../auth/index.js";
import type { Database } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { createLogger } from "../observability/index.js";
import { ApiFacade } from "./facade.js";
import { openApiDocument, registerApi } from "./server.js";
import { TaskWatcher } from "./task-watcher.js";

/** A database that refuses every call: building the document must not touch one. */
const noDatabase = new Proxy({} as Database, {
  get(_target, property) {
    throw new Error(
      `the OpenAPI document was built with a route that used the database (${String(property)})`,
    );
  },
});

/**
 * Builds the OpenAPI document of /api/v1 from the route schemas, without a database or a
 * network, exactly as a running API serves it at /api/v1/openapi.json.
 */
export async function buildOpenApiDocument(): Promise<unknown> {
  const app: FastifyInstance = Fastify({ logger: false });
  const log = createLogger({ level: "silent", service: "openapi", datacenterId: "dc1" });
  const keyFile = join(mkdtempSync(join(tmpdir(), "dv-openapi-")), "key.json");
  await registerApi(app, {
    facade: new ApiFacade({ db: noDatabase, newId, now: () => new Date() }),
    verifier: await createTokenVerifier(
      { issuer: "x", audience: "x", algorithms: ["ES256"], devKeyFile: keyFile },
      true,
    ),
    watcher: new TaskWatcher(noDatabase, log),
    metrics: new Registry(),
    rateLimit: { max: 1, windowMs: 1000 },
    idempotencyTtlHours: 24,
  });
  await app.ready();
  try {
    return await openApiDocument(app);
  } finally {
    await app.close();
  }
}
