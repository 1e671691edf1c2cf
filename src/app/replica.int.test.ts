// Connected to a replica (a real streaming standby of the test server, hack/postgres.sh
// standby-start): the control plane writes nothing and says so. The roles that must write refuse
// to start with one line; the API serves reads, answers writes 503 problem+json, reports the
// replica in /readyz, and logs it.
import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, seedTenant, startApi } from "../../test/support/api.js";
import { eventually } from "../../test/support/backbone.js";
import { databaseUrl } from "../../test/support/template.js";
import { loadDevKey, mintToken } from "../auth/index.js";
import { loadConfig } from "../config/index.js";
import { createHttpServer, type ReadinessCheck, registerOpsRoutes } from "../http/index.js";
import { Lifecycle, StartupError } from "../lifecycle/index.js";
import { createLogger, createMetricsRegistry } from "../observability/index.js";
import { PlatformStore } from "../contexts/platform/index.js";
import { inTransaction } from "../db/index.js";
import { databaseStatus } from "../maintenance/index.js";
import { mountApi } from "./api.js";
import { openDatabase } from "./dependencies.js";

const run = promisify(execFile);
const HACK = new URL("../../hack/postgres.sh", import.meta.url).pathname;

let primary: ApiHarness;
let replicaUrl: string;
let tenantName: string;

beforeAll(async () => {
  primary = await startApi();
  tenantName = (await seedTenant(primary, "replicated")).tenant.name;
  await run("bash", [HACK, "standby-start"], { timeout: 120_000 });
  const standby = new URL((await run("bash", [HACK, "standby-url"])).stdout.trim());
  const url = new URL(databaseUrl(primary.t.name));
  url.port = standby.port;
  replicaUrl = url.toString();
  // The tenant has reached the replica.
  await eventually(
    async () => {
      const client = new pg.Client(replicaUrl);
      try {
        await client.connect();
        const { rows } = await client.query<{ name: string }>(
          "SELECT name FROM tenancy.tenants WHERE name = $1",
          [tenantName],
        );
        return rows.length === 1 ? true : undefined;
      } catch {
        return undefined;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    30_000,
    "the tenant to be replayed on the replica",
  );
}, 180_000);

afterAll(async () => {
  await run("bash", [HACK, "standby-stop"], { timeout: 60_000 }).catch(() => undefined);
  await primary?.close();
});

/** What a process opening the replica logs, line by line. */
function capture(): { lines: Record<string, unknown>[]; log: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split("\n").filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return {
    lines,
    log: createLogger({ level: "info", service: "test", datacenterId: "dc1", destination }),
  };
}

describe("a primary with a streaming replica", () => {
  it("weighs each context's RecoveryPolicy against the replica's lag", async () => {
    const platform = new PlatformStore(primary.t.db);
    await inTransaction(primary.t.db, async (tx) => {
      await platform.upsert(tx, {
        kind: "RecoveryPolicy",
        name: "inventory",
        generation: 1,
        spec: {
          context: "inventory",
          rpoClass: "minutes",
          rtoClass: "minutes",
          crossSiteReplication: "required",
          failover: "operator-approved",
        },
      });
      await platform.upsert(tx, {
        kind: "RecoveryPolicy",
        name: "task",
        generation: 1,
        spec: {
          context: "task",
          rpoClass: "hours",
          rtoClass: "minutes",
          crossSiteReplication: "optional",
          failover: "automatic",
        },
      });
    });
    const status = await eventually(
      async () => {
        const s = await databaseStatus(primary.t.admin);
        // Streaming, and it has reported what it replayed.
        return s.replication.replicas.some((r) => r.state === "streaming" && r.lagBytes !== null)
          ? s
          : undefined;
      },
      20_000,
      "the replica to stream and report its replay position",
    );
    expect(status.role).toBe("primary");
    const of = (context: string) => status.recovery.find((r) => r.context === context);
    expect(of("inventory")?.promotion, JSON.stringify(status.replication)).toMatchObject({
      state: "operator-gated",
    });
    expect(of("inventory")?.promotion.reason).toMatch(
      /^\S+ is within RPO minutes \([\d.]+ s behind\); failover waits for an operator's approval$/,
    );
    expect(of("task")?.promotion.state).toBe("safe");
    expect(of("audit")?.promotion).toMatchObject({ state: "blocked" });
    expect(of("audit")?.promotion.reason).toMatch(/no RecoveryPolicy declares audit's targets/);
  });
});

describe("a control plane pointed at a replica", () => {
  it("does not start a role that writes, and says why in one line", async () => {
    const config = loadConfig({ env: { DATABASE_URL: replicaUrl }, cwd: process.cwd() });
    const { log } = capture();
    const lifecycle = new Lifecycle(log);
    const refused = await openDatabase({
      config,
      log,
      lifecycle,
      readiness: [],
      role: "controller",
      embedded: false,
      migrate: true,
    }).catch((err: unknown) => err);
    await lifecycle.stop("test done");
    expect(refused).toBeInstanceOf(StartupError);
    expect(refused).toMatchObject({
      code: "DV_POSTGRES_READ_ONLY",
      hint: "point DATABASE_URL at the primary, or promote this server",
    });
    expect((refused as Error).message).toMatch(
      /^the database server 127\.0\.0\.1:\d+\/\S+ is a replica \(pg_is_in_recovery\(\) is true\): it refuses writes, and dv controller has to write$/,
    );
  });

  it("serves reads, answers writes 503, and reports the replica in /readyz and the log", async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), "dv-replica-")), "key.json");
    const config = loadConfig({
      env: { DATABASE_URL: replicaUrl, DV_AUTH_DEV_KEY_FILE: keyFile },
      cwd: process.cwd(),
    });
    const { lines, log } = capture();
    const lifecycle = new Lifecycle(log);
    const readiness: ReadinessCheck[] = [];
    const metrics = createMetricsRegistry();
    const app = createHttpServer({ log, metrics, bodyLimitBytes: config.http.bodyLimitBytes });
    registerOpsRoutes(app, { metrics, readiness: () => readiness });
    try {
      const db = await openDatabase({
        config,
        log,
        lifecycle,
        readiness,
        role: "api",
        embedded: false,
        migrate: true,
      });
      await mountApi({ app, config, db, log, metrics, lifecycle, allowDevKey: true });
      await app.ready();
      const said = lines.find((l) => l.level === "error");
      expect(said?.msg).toMatch(
        /is a replica \(pg_is_in_recovery\(\) is true\): it refuses writes: serving reads only, writes answer 503, migrations not applied; point DATABASE_URL at the primary/,
      );

      const ready = await app.inject({ method: "GET", url: "/readyz" });
      expect(ready.statusCode).toBe(503);
      expect(ready.json<{ checks: Record<string, string> }>().checks.postgres).toMatch(
        /is a replica \(pg_is_in_recovery\(\) is true\): it refuses writes; point DATABASE_URL at the primary/,
      );

      const key = await loadDevKey(keyFile, false);
      const token = await mintToken({
        key,
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        subject: "operator-user",
        role: "operator",
        ttlSeconds: 600,
      });
      const headers = { authorization: `Bearer ${token}` };
      const read = await app.inject({ method: "GET", url: "/api/v1/tenants", headers });
      expect(read.statusCode, read.body).toBe(200);
      expect(
        read.json<{ items: { metadata: { name: string } }[] }>().items.map((t) => t.metadata.name),
      ).toContain(tenantName);

      const write = await app.inject({
        method: "POST",
        url: "/api/v1/tenants",
        headers,
        payload: { name: "never" },
      });
      expect(write.statusCode, write.body).toBe(503);
      expect(write.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(write.headers["retry-after"]).toBe("30");
      expect(write.json()).toMatchObject({
        type: "https://dataverket.io/problems/database-read-only",
        status: 503,
        detail: expect.stringMatching(
          /is a replica \(in recovery\) and refuses writes; nothing was changed/,
        ),
      });
    } finally {
      await app.close();
      await lifecycle.stop("test done");
    }
  });
});
