// docs/metrics.md is the contract operators build dashboards and alerts on: every metric it
// lists must be on /metrics of a running control plane (on PostgreSQL, so the pool metrics are
// there too), with the type it says, and every dataverket_ metric served must be listed.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { type DvProcess, startDv } from "../../test/support/process.js";
import { databaseUrl } from "../../test/support/template.js";
import { freePort } from "../dev/index.js";

let t: TestDatabase;
let dev: DvProcess;
let metricsUrl: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), "dv-metrics-"));
  const port = await freePort();
  dev = startDv(["dev"], {
    DATABASE_URL: databaseUrl(t.name),
    DV_HTTP_PORT: String(port),
    DV_NATS_PORT: String(await freePort()),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "warn",
  });
  await dev.waitFor(/export DV_TOKEN=/, 90_000);
  metricsUrl = `http://127.0.0.1:${port}/metrics`;
}, 120_000);

afterAll(async () => {
  if (dev?.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
  await t?.drop();
});

/** The documented metrics: name → type, from the table of docs/metrics.md. */
function documented(): Map<string, string> {
  const text = readFileSync(join(import.meta.dirname, "../../docs/metrics.md"), "utf8");
  const rows = new Map<string, string>();
  for (const m of text.matchAll(/^\| `(dataverket_[a-z_]+)`\s*\|\s*(\w+)\s*\|/gm))
    rows.set(m[1] ?? "", m[2] ?? "");
  return rows;
}

describe("docs/metrics.md and /metrics", () => {
  it("agree: every documented metric is served with its type, and nothing undocumented is", async () => {
    const body = await (await fetch(metricsUrl)).text();
    const served = new Map<string, string>();
    for (const m of body.matchAll(/^# TYPE (dataverket_[a-z_]+) (\w+)$/gm))
      served.set(m[1] ?? "", m[2] ?? "");
    const docs = documented();
    expect(docs.size).toBeGreaterThanOrEqual(19);
    expect(Object.fromEntries(served)).toEqual(Object.fromEntries(docs));
    // The pool gauge has values for both pools of a controller on PostgreSQL.
    expect(body).toMatch(/^dataverket_db_pool_connections\{pool="main",state="max"\} \d+$/m);
    expect(body).toMatch(/^dataverket_db_pool_connections\{pool="leases",state="max"\} 2$/m);
  });
});
