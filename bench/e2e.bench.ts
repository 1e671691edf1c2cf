// End to end, as a deployment runs it: `dv api`, `dv controller` and `dv worker --service nett`
// as separate processes (from dist/) on one PostgreSQL and one nats-server. Tenants' clients
// create networks over HTTP; each is reconciled (a VLAN and a prefix reserved), commanded through
// the outbox and JetStream, applied by the simulated Nett, and reported Ready — its task
// succeeded. First a burst from 64 clients at once, then a steady rate. Latency is from the
// `202 Accepted` to the task's `finished_at`; memory is each process's peak resident set.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/support/backbone.js";
import type { TestDatabase } from "../test/support/database.js";
import type { TestNats } from "../test/support/nats.js";
import { databaseUrl } from "../test/support/template.js";
import {
  BENCH_PLATFORM,
  benchKey,
  type DvChild,
  PROFILES,
  startDv,
  type Stage,
  startStage,
} from "./support/dv.js";
import { cpuBetween, cpuSeconds, RssSampler } from "./support/processes.js";
import { profileHotspots } from "./support/profiles.js";
import { hotspots, percentile, report, timedPool } from "./support/report.js";
import { QUICK, size } from "./support/scale.js";
import { startTrace, traceSteps } from "./support/trace.js";
import {
  commitsSoFar,
  resetStatements,
  statementsRun,
  topStatements,
} from "./support/statements.js";

const BURST = Number(process.env.DV_BENCH_BURST ?? size(10_000, 100));
const CLIENTS = 64;
const RATE = Number(process.env.DV_BENCH_RATE ?? size(100, 10));
const STEADY_SECONDS = Number(process.env.DV_BENCH_STEADY_SECONDS ?? size(60, 3));
const DATACENTERS = 5;
/** `DV_BENCH_TRACE=1`: where the steady networks' time went, step by step (bench/support/trace.ts). */
const TRACE = process.env.DV_BENCH_TRACE === "1";

let stage: Stage;
let db: TestDatabase;
let nats: TestNats;
let processes: DvChild[];
beforeAll(async () => {
  stage = await startStage();
  ({ db, nats, processes } = stage);
});
afterAll(async () => stage?.close());

interface Client {
  /** Requests answered 503 (load shed) and sent again after their Retry-After. */
  shed: number;
  create(i: number, prefix: string): Promise<{ taskId: string; acceptedAt: number }>;
}

/** Creates the tenant and one environment per datacenter; returns a client creating networks. */
async function tenant(
  api: string,
  token: (role: "operator" | "tenant-admin", tenant?: string) => Promise<string>,
): Promise<Client> {
  const call = async (bearer: string, path: string, body: unknown): Promise<unknown> => {
    const r = await fetch(`${api}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (r.status >= 300) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    return r.json();
  };
  const operator = await token("operator");
  type Created = { metadata: { id: string } };
  const t = (await call(operator, "/api/v1/tenants", { name: "bench" })) as Created;
  const admin = await token("tenant-admin", "bench");
  const base = `/api/v1/tenants/${t.metadata.id}`;
  const p = (await call(admin, `${base}/projects`, { name: "load" })) as Created;
  const environments: string[] = [];
  for (let dc = 1; dc <= DATACENTERS; dc++) {
    const e = (await call(admin, `${base}/projects/${p.metadata.id}/environments`, {
      name: `dc${dc}`,
      datacenter: `dc${dc}`,
    })) as Created;
    environments.push(`${base}/projects/${p.metadata.id}/environments/${e.metadata.id}/networks`);
  }
  const client: Client = {
    shed: 0,
    async create(i, prefix) {
      // As a client should: a 503 with Retry-After (the API shedding load) is retried after it.
      for (let attempt = 1; ; attempt++) {
        const r = await fetch(`${api}${environments[i % DATACENTERS] as string}`, {
          method: "POST",
          headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
          body: JSON.stringify({ name: `${prefix}-${i}`, spec: { prefixLength: 28 } }),
        });
        const retryAfter = Number(r.headers.get("retry-after"));
        if (r.status === 503 && retryAfter > 0 && attempt < 20) {
          client.shed++;
          await r.arrayBuffer();
          await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000));
          continue;
        }
        if (r.status !== 202) throw new Error(`POST a network: ${r.status} ${await r.text()}`);
        return { taskId: ((await r.json()) as { id: string }).id, acceptedAt: Date.now() };
      }
    },
  };
  return client;
}

/**
 * Where a task's time went, from its history (each event stamped when its transaction began):
 * the medians from `created` to `queued` (the controller's first pass), from `queued` to `started`
 * (the relay, JetStream, the worker) and from `started` to `succeeded` (the effect, its event,
 * the controller's next pass).
 */
async function stages(
  ids: readonly string[],
): Promise<{ toQueued: number; toStarted: number; toSucceeded: number }> {
  const [row] = await db.admin.query<{ queued: number; started: number; succeeded: number }>(
    `/* bench */ SELECT
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM q.at - c.at) * 1000) AS queued,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM s.at - q.at) * 1000) AS started,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.at - s.at) * 1000) AS succeeded
       FROM task.task_events c
       JOIN task.task_events q ON q.task_id = c.task_id AND q.verb = 'queued'
       JOIN task.task_events s ON s.task_id = c.task_id AND s.verb = 'started'
       JOIN task.task_events d ON d.task_id = c.task_id AND d.verb = 'succeeded'
      WHERE c.verb = 'created' AND c.task_id = ANY($1::uuid[])`,
    [ids],
  );
  return {
    toQueued: Number(row?.queued ?? 0),
    toStarted: Number(row?.started ?? 0),
    toSucceeded: Number(row?.succeeded ?? 0),
  };
}

/** Waits until every task is finished; returns each one's latency from its 202, and the last finish. */
async function finished(
  accepted: ReadonlyMap<string, number>,
  timeoutMs: number,
): Promise<{ latencies: number[]; last: number; failed: number }> {
  const ids = [...accepted.keys()];
  await eventually(
    async () => {
      const [row] = await db.admin.query<{ n: string }>(
        "/* bench */ SELECT count(*) AS n FROM task.tasks WHERE id = ANY($1::uuid[]) AND finished_at IS NOT NULL",
        [ids],
      );
      return Number(row?.n) === ids.length ? true : undefined;
    },
    timeoutMs,
    `${ids.length} networks to be Ready`,
  );
  const rows = await db.admin.query<{ id: string; at: number; state: string }>(
    "/* bench */ SELECT id, (extract(epoch FROM finished_at) * 1000)::float8 AS at, state FROM task.tasks WHERE id = ANY($1::uuid[])",
    [ids],
  );
  return {
    latencies: rows.map((r) => Number(r.at) - (accepted.get(r.id) ?? Number.NaN)),
    last: Math.max(...rows.map((r) => Number(r.at))),
    failed: rows.filter((r) => r.state !== "succeeded").length,
  };
}

describe("end to end", () => {
  it(`${BURST} networks from ${CLIENTS} clients, then ${RATE}/s for ${STEADY_SECONDS} s`, async () => {
    const key = await benchKey();
    const env = {
      DATABASE_URL: databaseUrl(db.name),
      NATS_URL: nats.url,
      DV_PLATFORM_CONFIG_DIR: BENCH_PLATFORM,
      DV_API_RATE_LIMIT: "1000000",
      DV_SIM_LATENCY_MS: "0",
      ...key.env,
    };
    const controller = await startDv("controller", ["controller"], env);
    processes.push(controller);
    await eventually(
      async () => {
        const [row] = await db.admin.query<{ n: string }>(
          "/* bench */ SELECT count(*) AS n FROM inventory.network_pools",
        );
        return Number(row?.n) === DATACENTERS ? true : undefined;
      },
      60_000,
      "the platform configuration to be applied",
    );
    const worker = await startDv("worker-nett", ["worker", "--service", "nett"], env);
    const api = await startDv("api", ["api"], env);
    processes.push(worker, api);
    const client = await tenant(api.url, (role, t) => key.token(role, t));
    const named = { api: api.pid, controller: controller.pid, "worker (nett)": worker.pid };
    const rss = new RssSampler(named);

    // The burst: every client sends its next request as soon as its last one was accepted.
    await resetStatements(db.admin);
    const commitsBefore = await commitsSoFar(db.admin);
    const cpuBefore = cpuSeconds(named);
    const accepted = new Map<string, number>();
    const started = Date.now();
    await timedPool(
      Array.from({ length: BURST }, (_, i) => i),
      CLIENTS,
      async (i) => {
        const { taskId, acceptedAt } = await client.create(i, "burst");
        accepted.set(taskId, acceptedAt);
      },
    );
    const burst = await finished(accepted, 1_800_000);
    const burstShed = client.shed;
    const burstSeconds = (burst.last - started) / 1000;
    const cpu = cpuBetween(cpuBefore, cpuSeconds(named));
    const burstPeaks = rss.peaks();
    const statements = (await statementsRun(db.admin)) / BURST;
    const sentStatements = (await statementsRun(db.admin, { sentOnly: true })) / BURST;
    const commits = ((await commitsSoFar(db.admin)) - commitsBefore) / BURST;
    expect(burst.failed).toBe(0);
    hotspots(
      "e2e",
      `burst of ${BURST}: SQL by execution time (pg_stat_statements)`,
      await topStatements(db.admin, 8, "e2e-burst"),
    );

    if (TRACE) await startTrace(db.admin);
    // Steady: one request every 1/RATE s whether or not the last ones are Ready (open loop).
    const steady = new Map<string, number>();
    const refused: string[] = [];
    const sends: Promise<void>[] = [];
    const steadyStart = Date.now();
    for (let i = 0; i < RATE * STEADY_SECONDS; i++) {
      const due = steadyStart + (i * 1000) / RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      sends.push(
        client.create(i, "steady").then(
          ({ taskId, acceptedAt }) => void steady.set(taskId, acceptedAt),
          (err: unknown) => void refused.push(err instanceof Error ? err.message : String(err)),
        ),
      );
    }
    await Promise.all(sends);
    const sent = (Date.now() - steadyStart) / 1000;
    if (refused.length > 0)
      console.error(
        `${refused.length} steady requests failed; the first: ${refused[0]}\ndv api said:\n${api.output().slice(-4000)}`,
      );
    expect(refused).toEqual([]);
    const steadyDone = await finished(steady, 1_800_000);
    const steadyStages = await stages([...steady.keys()]);
    if (TRACE) {
      console.log("e2e: steady, step by step (DV_BENCH_TRACE=1): p50, p99");
      for (const { step, p50, p99 } of await traceSteps(db.admin, [...steady.keys()]))
        console.log(`  ${String(p50).padStart(7)} ms ${String(p99).padStart(7)} ms  ${step}`);
    }
    const steadyShed = client.shed - burstShed;
    expect(steadyDone.failed).toBe(0);
    rss.stop();
    const peaks = rss.peaks();

    report("e2e", {
      [`burst: ${BURST} networks to Ready, ${CLIENTS} clients`]: [
        BURST / burstSeconds,
        "networks/s",
        QUICK ? undefined : { atLeast: 150 },
      ],
      "burst: 202 to Ready, p50": [percentile(burst.latencies, 50), "ms"],
      "burst: p95": [percentile(burst.latencies, 95), "ms"],
      "burst: p99": [percentile(burst.latencies, 99), "ms"],
      "burst: requests shed (503, retried after Retry-After)": [burstShed, "requests"],
      "burst: SQL statements per network (every process, with the triggers' and foreign keys')": [
        statements,
        "statements",
        QUICK ? undefined : { below: 30 },
      ],
      "burst: SQL statements per network sent by the processes (round trips)": [
        sentStatements,
        "statements",
      ],
      "burst: transactions committed per network": [
        commits,
        "commits",
        QUICK ? undefined : { below: 6 },
      ],
      [`steady ${RATE}/s for ${STEADY_SECONDS} s: rate sent`]: [
        (RATE * STEADY_SECONDS) / sent,
        "req/s",
      ],
      "steady: requests shed (503, retried after Retry-After)": [steadyShed, "requests"],
      "steady: 202 to Ready, p50": [percentile(steadyDone.latencies, 50), "ms"],
      "steady: p95": [percentile(steadyDone.latencies, 95), "ms"],
      "steady: task created to queued (the controller's pass sent its command), p50": [
        steadyStages.toQueued,
        "ms",
      ],
      "steady: task queued to started (relayed, and taken by the worker), p50": [
        steadyStages.toStarted,
        "ms",
      ],
      "steady: task started to succeeded (the controller saw the effect), p50": [
        steadyStages.toSucceeded,
        "ms",
      ],
      "steady: p99": [
        percentile(steadyDone.latencies, 99),
        "ms",
        QUICK ? undefined : { below: 250 },
      ],
      ...Object.fromEntries(
        Object.entries(peaks).map(([label, mib]) => [
          `peak RSS, ${label} (burst: ${Math.round(burstPeaks[label] ?? 0)} MiB)`,
          [mib, "MiB"] as const,
        ]),
      ),
      ...Object.fromEntries(
        Object.entries(cpu).map(([group, s]) => [
          `burst CPU, ${group}`,
          [s, `s (${Math.round((100 * s) / burstSeconds)} % of a core)`] as const,
        ]),
      ),
    });

    for (const p of processes) await p.stop();
    for (const label of ["api", "controller", "worker-nett"])
      profileHotspots("e2e", label, `${PROFILES}/${label}`);
  });
});
