// What the API costs over the database: `GET` of one network by id from `dv api` (from dist/:
// JWT verification, the tenant check, the read, its representation, metrics, access log) at
// steady load from autocannon, next to a bare Fastify route that runs the single SELECT of that
// read (bench/support/bare-route.ts). Both are processes of their own on the same PostgreSQL,
// with pools of the same size, driven by the same connections.
import autocannon from "autocannon";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { databaseUrl } from "../test/support/template.js";
import { seedNetworkPool } from "../test/support/topology.js";
import { benchKey, type DvChild, PROFILES, startBareRoute, startDv } from "./support/dv.js";
import { cpuBetween, cpuSeconds } from "./support/processes.js";
import { profileHotspots } from "./support/profiles.js";
import { report } from "./support/report.js";
import { resetStatements, statementsRun } from "./support/statements.js";
import { QUICK, size } from "./support/scale.js";

const CONNECTIONS = 16;
const SECONDS = Number(process.env.DV_BENCH_SECONDS ?? size(20, 2));

let db: TestDatabase;
const processes: DvChild[] = [];
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  for (const p of processes) await p.stop();
  await db?.drop();
});

async function load(
  url: string,
  headers: Record<string, string>,
): Promise<{
  rps: number;
  total: number;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
}> {
  const result = await autocannon({
    url,
    headers,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  return {
    rps: result.requests.average,
    total: result.requests.total,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** Milliseconds of CPU `group` spent per request of a load run. */
const perRequest = (cpu: Record<string, number>, group: string, run: { rps: number }): number =>
  (1000 * (cpu[group] ?? 0)) / (run.rps * SECONDS);

describe("API overhead", () => {
  it(`GET one network, ${CONNECTIONS} connections, ${SECONDS} s each: dv api and a bare route`, async () => {
    // A datacenter with a default network pool, so the network below is admitted.
    await seedNetworkPool(db.db, {
      datacenter: "dc1",
      pool: "dc1-tenant",
      vlans: { first: 100, last: 199 },
      prefixes: ["10.64.0.0/16"],
    });
    const key = await benchKey();
    const env = { DATABASE_URL: databaseUrl(db.name), DV_API_RATE_LIMIT: "1000000", ...key.env };
    const api = await startDv("api-overhead", ["api"], env);
    const bare = await startBareRoute({ DATABASE_URL: databaseUrl(db.name) });
    processes.push(api, bare);

    const post = async (token: string, path: string, body: unknown) => {
      const r = await fetch(`${api.url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(r.status, await r.clone().text()).toBeLessThan(300);
      return (await r.json()) as { metadata?: { id: string }; resource?: { id: string } };
    };
    const tenant = await post(await key.token("operator"), "/api/v1/tenants", { name: "bench" });
    const admin = await key.token("tenant-admin", "bench");
    const base = `/api/v1/tenants/${tenant.metadata?.id}`;
    const project = await post(admin, `${base}/projects`, { name: "p" });
    const environment = await post(admin, `${base}/projects/${project.metadata?.id}/environments`, {
      name: "e",
      datacenter: "dc1",
    });
    const networks = `${base}/projects/${project.metadata?.id}/environments/${environment.metadata?.id}/networks`;
    const created = await post(admin, networks, { name: "n", spec: { prefixLength: 28 } });
    const id = created.resource?.id ?? "";

    // Both answer with the same resource before either is measured.
    const viaApi = await fetch(`${api.url}${networks}/${id}`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const viaBare = await fetch(`${bare.url}/bare/${tenant.metadata?.id}/${id}`);
    expect(viaApi.status).toBe(200);
    expect(viaBare.status).toBe(200);
    expect(((await viaApi.json()) as { metadata: { id: string } }).metadata.id).toBe(id);
    expect(((await viaBare.json()) as { id: string }).id).toBe(id);

    const named = { "dv api": api.pid, "bare route": bare.pid };
    await resetStatements(db.admin);
    const before = cpuSeconds(named);
    const measuredApi = await load(`${api.url}${networks}/${id}`, {
      authorization: `Bearer ${admin}`,
    });
    const between = cpuSeconds(named);
    const statementsApi = await statementsRun(db.admin, { sentOnly: true });
    await resetStatements(db.admin);
    const measuredBare = await load(`${bare.url}/bare/${tenant.metadata?.id}/${id}`, {});
    const statementsBare = await statementsRun(db.admin, { sentOnly: true });
    const cpuApi = cpuBetween(before, between);
    const cpuBare = cpuBetween(between, cpuSeconds(named));
    expect(measuredApi.non2xx + measuredApi.errors).toBe(0);
    expect(measuredBare.non2xx + measuredBare.errors).toBe(0);
    const overhead = (100 * (measuredBare.rps - measuredApi.rps)) / measuredBare.rps;
    report("api", {
      "GET network, dv api": [measuredApi.rps, "req/s"],
      "GET network, dv api, p50": [measuredApi.p50, "ms"],
      "GET network, dv api, p99": [measuredApi.p99, "ms"],
      "GET, bare route (one SELECT)": [measuredBare.rps, "req/s"],
      "GET, bare route, p50": [measuredBare.p50, "ms"],
      "GET, bare route, p99": [measuredBare.p99, "ms"],
      "API overhead (throughput lost to it)": [overhead, "%", QUICK ? undefined : { below: 15 }],
      "SQL statements per GET, dv api": [statementsApi / measuredApi.total, "statements"],
      "SQL statements per GET, bare route": [statementsBare / measuredBare.total, "statements"],
      "CPU per request, dv api process": [perRequest(cpuApi, "dv api", measuredApi), "ms"],
      "CPU per request, PostgreSQL (dv api)": [perRequest(cpuApi, "postgres", measuredApi), "ms"],
      "CPU per request, bare route process": [
        perRequest(cpuBare, "bare route", measuredBare),
        "ms",
      ],
      "CPU per request, PostgreSQL (bare route)": [
        perRequest(cpuBare, "postgres", measuredBare),
        "ms",
      ],
      "CPU per request, autocannon (dv api)": [
        perRequest(cpuApi, "bench (load generator)", measuredApi),
        "ms",
      ],
    });
    for (const p of processes) await p.stop();
    profileHotspots("api", "api-overhead", `${PROFILES}/api-overhead`);
  });
});
