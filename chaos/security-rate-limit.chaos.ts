// One tenant bursts at ten times the rate limit against a real `dv api` process (the limiter as
// production configures it: DV_API_RATE_LIMIT per DV_API_RATE_WINDOW_MS, per tenant), with a mix
// of valid reads and requests that fail validation (a bad query, an unknown body field): it gets
// 429 with Retry-After, and no more than the limit of requests per window get through, whatever
// they are. Meanwhile another tenant, below the limit, sends the same reads it sent before the
// burst: it gets no 429 and only 2xx. Its p99 latency quiet and during the burst, and their
// ratio (the product's goal is within 10 %), are figures in the table, never assertions (speed is
// measured by `npm run bench`): the burst comes from a worker thread of its own, so the other
// tenant's latencies are not those of this process's event loop.
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchKey } from "../bench/support/dv.js";
import { freePort } from "../src/dev/index.js";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../test/support/api.js";
import { environmentUrl } from "../test/support/api-sweep.js";
import { eventually } from "../test/support/backbone.js";
import { type DvProcess, startDv } from "../test/support/process.js";
import { databaseUrl } from "../test/support/template.js";
import { record, size } from "./support/report.js";

/** Requests per window each tenant may make, and the window. */
const LIMIT = 50;
const WINDOW_MS = 1000;
/** The other tenant's pause between requests: at most 1000 / 25 = 40 a second, below the limit. */
const PAUSE_MS = 25;
/** The bursting tenant's rate: ten times the limit. */
const BURST_PER_SECOND = (10 * LIMIT * 1000) / WINDOW_MS;

let seed: ApiHarness;
let dv: DvProcess;
let base: string;
let alpha: Seeded;
let bravo: Seeded;
let tokens: { alpha: string; bravo: string };

beforeAll(async () => {
  // Seeded through an in-process API on the database the `dv api` process then serves.
  seed = await startApi();
  alpha = await seedTenant(seed, "alpha");
  bravo = await seedTenant(seed, "bravo");
  const key = await benchKey();
  tokens = {
    alpha: await key.token("tenant-admin", "alpha"),
    bravo: await key.token("tenant-admin", "bravo"),
  };
  const port = await freePort();
  dv = startDv(["api"], {
    DATABASE_URL: databaseUrl(seed.t.name),
    DV_HTTP_PORT: String(port),
    DV_LOG_LEVEL: "warn",
    DV_API_RATE_LIMIT: String(LIMIT),
    DV_API_RATE_WINDOW_MS: String(WINDOW_MS),
    ...key.env,
  });
  base = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (dv.child.exitCode !== null) throw new Error(`dv api exited: ${dv.stderr()}`);
      const r = await fetch(`${base}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
    "dv api to be ready",
  );
}, 120_000);

afterAll(async () => {
  if (dv?.child.exitCode === null) {
    dv.child.kill("SIGTERM");
    await dv.exited;
  }
  await seed?.close();
});

/** One request of a mix. */
interface Request {
  readonly kind: "read" | "invalid";
  readonly method: string;
  readonly path: string;
  readonly body?: string;
}

/** The reads a tenant makes while it works: itself, its projects, network, tasks and task. */
function reads(s: Seeded): Request[] {
  const tenant = `/api/v1/tenants/${s.tenant.id}`;
  return [
    { kind: "read", method: "GET", path: tenant },
    { kind: "read", method: "GET", path: `${tenant}/projects` },
    { kind: "read", method: "GET", path: `${environmentUrl(s)}/networks/${s.network.id}` },
    { kind: "read", method: "GET", path: `${tenant}/tasks` },
    { kind: "read", method: "GET", path: `${tenant}/tasks/${s.task.id}` },
  ];
}

/** Requests refused by validation: they must count against the limit like any other. */
function invalid(s: Seeded): Request[] {
  const tenant = `/api/v1/tenants/${s.tenant.id}`;
  return [
    { kind: "invalid", method: "GET", path: `${tenant}/projects?limit=0` },
    {
      kind: "invalid",
      method: "POST",
      path: `${tenant}/projects`,
      body: JSON.stringify({ name: "burst", owner: "me" }),
    },
  ];
}

/** The nearest-rank percentile of `values`, in ms. */
function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
}

/** `count` requests of `mix` in turn, one at a time with a pause; statuses and latencies. */
async function steady(
  token: string,
  mix: readonly Request[],
  count: number,
): Promise<{ statuses: number[]; latencies: number[] }> {
  const statuses: number[] = [];
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const req = mix[i % mix.length];
    if (req === undefined) break;
    const started = performance.now();
    const r = await fetch(`${base}${req.path}`, {
      method: req.method,
      headers: { authorization: `Bearer ${token}` },
    });
    await r.arrayBuffer();
    latencies.push(performance.now() - started);
    statuses.push(r.status);
    await new Promise((resolve) => setTimeout(resolve, PAUSE_MS));
  }
  return { statuses, latencies };
}

/** What the burst's worker thread reports when it is told to stop. */
interface BurstReport {
  /** `<kind> <status>` (or `<kind> error`) → count. */
  readonly counts: Record<string, number>;
  /** 429s that carried a Retry-After header. */
  readonly retryAfter: number;
  readonly sent: number;
  /** Sends skipped because too many requests were already in flight. */
  readonly skipped: number;
  readonly elapsedMs: number;
}

// The burst runs in a worker thread (plain JavaScript: a worker does not go through vitest's
// transform): open loop at `rate` a second, at most `maxInFlight` outstanding, until "stop".
const BURST_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { base, token, mix, rate, maxInFlight } = workerData;
let stopping = false;
parentPort.on("message", () => { stopping = true; });
(async () => {
  const counts = {};
  const count = (key) => { counts[key] = (counts[key] ?? 0) + 1; };
  let sent = 0, skipped = 0, inFlight = 0, retryAfter = 0, i = 0;
  const pending = new Set();
  const start = performance.now();
  while (!stopping) {
    const wait = start + (i * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const req = mix[i % mix.length];
    i++;
    if (inFlight >= maxInFlight) { skipped++; continue; }
    inFlight++;
    sent++;
    const p = fetch(base + req.path, {
      method: req.method,
      headers: { authorization: "Bearer " + token, ...(req.body ? { "content-type": "application/json" } : {}) },
      ...(req.body ? { body: req.body } : {}),
    })
      .then(async (r) => {
        await r.arrayBuffer();
        if (r.status === 429 && r.headers.get("retry-after")) retryAfter++;
        count(req.kind + " " + r.status);
      })
      .catch(() => count(req.kind + " error"))
      .finally(() => { inFlight--; pending.delete(p); });
    pending.add(p);
  }
  await Promise.all(pending);
  parentPort.postMessage({ counts, retryAfter, sent, skipped, elapsedMs: performance.now() - start });
})();
`;

/** Starts the burst; resolves with its report after `stop()`. */
function startBurst(token: string, mix: readonly Request[]) {
  const worker = new Worker(BURST_WORKER, {
    eval: true,
    workerData: { base, token, mix, rate: BURST_PER_SECOND, maxInFlight: 64 },
  });
  const report = new Promise<BurstReport>((resolve, reject) => {
    worker.once("message", (m: BurstReport) => resolve(m));
    worker.once("error", reject);
  });
  return {
    async stop(): Promise<BurstReport> {
      worker.postMessage("stop");
      const r = await report;
      await worker.terminate();
      return r;
    },
  };
}

describe("rate limits", () => {
  it(`a burst at 10× the limit from one tenant gets 429; another tenant gets only 2xx`, async () => {
    const perPhase = size(600, 200);
    const mix = reads(bravo);
    // Warm up the process (JIT, token cache, connections) so the quiet phase is not its start.
    await steady(tokens.bravo, mix, 20);

    const quiet = await steady(tokens.bravo, mix, perPhase);
    const burst = startBurst(tokens.alpha, [...reads(alpha), ...reads(alpha), ...invalid(alpha)]);
    const during = await steady(tokens.bravo, mix, perPhase);
    const report = await burst.stop();

    const sum = (pred: (key: string) => boolean) =>
      Object.entries(report.counts)
        .filter(([k]) => pred(k))
        .reduce((n, [, v]) => n + v, 0);
    const limited = sum((k) => k.endsWith(" 429"));
    const through = sum((k) => !k.endsWith(" 429"));
    const failed = sum((k) => / (5\d\d|error)$/.test(k));
    // A fixed window starts at a tenant's first request after the last one ended: a burst of
    // `elapsed` ms touches at most floor(elapsed / window) + 2 of them.
    const windows = Math.floor(report.elapsedMs / WINDOW_MS) + 2;
    const allowedBound = LIMIT * windows;
    const otherNot2xx = [...quiet.statuses, ...during.statuses].filter((s) => s < 200 || s > 299);
    const other429 = otherNot2xx.filter((s) => s === 429).length;
    const p99Quiet = percentile(quiet.latencies, 99);
    const p99Burst = percentile(during.latencies, 99);
    const burstRate = (report.sent * 1000) / report.elapsedMs;

    record({
      scenario: "security-rate-limit",
      faults: report.sent,
      operations: report.sent + quiet.statuses.length + during.statuses.length,
      lost: 0,
      duplicated: 0,
      violations: Math.max(0, through - allowedBound) + failed + otherNot2xx.length,
      figures: {
        limit_per_s: (LIMIT * 1000) / WINDOW_MS,
        burst_rate_per_s: Math.round(burstRate),
        burst_x_limit: Number((burstRate / ((LIMIT * 1000) / WINDOW_MS)).toFixed(1)),
        status_429: limited,
        burst_through: through,
        burst_through_bound: allowedBound,
        other_429: other429,
        p50_quiet_ms: Number(percentile(quiet.latencies, 50).toFixed(1)),
        p50_during_burst_ms: Number(percentile(during.latencies, 50).toFixed(1)),
        p99_quiet_ms: Number(p99Quiet.toFixed(1)),
        p99_during_burst_ms: Number(p99Burst.toFixed(1)),
        p99_ratio: Number((p99Burst / p99Quiet).toFixed(2)),
      },
    });
    expect(limited, JSON.stringify(report)).toBeGreaterThan(0);
    // Every 429 says when to come back.
    expect(report.retryAfter).toBe(limited);
    // No more got through than the limit allows, requests refused by validation included.
    expect(through, JSON.stringify(report.counts)).toBeLessThanOrEqual(allowedBound);
    expect(failed, JSON.stringify(report.counts)).toBe(0);
    // The other tenant is not limited for the first tenant's burst.
    expect(otherNot2xx).toEqual([]);
  });
});
