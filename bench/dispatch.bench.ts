// Dispatch, side by side with graphile-worker on the same PostgreSQL server in the same run.
//
// Ours: each command is committed as intent — a task (`created`, with its event) and the command
// in the outbox, in one transaction per batch — relayed to JetStream, delivered to a nett worker
// whose driver does nothing, and recorded back: the task `started` (with its event), the inbox
// record, the domain event and the command's outbox row done, each in PostgreSQL; the relay
// publishes the three events too. Graphile-worker: each job added (add_jobs, one
// transaction per batch), run by a task that does nothing, and completed (its row deleted).
// Both with the same batches, the same number of jobs at once, the same connection pool, and
// (ours always, graphile-worker in its batched configuration) 500 jobs pulled ahead.
// Latency is from the commit of a job's batch to its completion being recorded.
import { EventEmitter } from "node:events";
import {
  Logger as GraphileLogger,
  makeWorkerUtils,
  type Runner,
  run as runGraphile,
  type WorkerEvents,
} from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inTransaction } from "../src/db/index.js";
import { newId } from "../src/kernel/index.js";
import {
  createEnvelope,
  domainCommands,
  messageHeaders,
  workerConsumer,
} from "../src/messaging/index.js";
import { createLogger } from "../src/observability/index.js";
import { type Driver, Worker } from "../src/workers/index.js";
import {
  type Backbone,
  eventually,
  FAST_WORKERS,
  startBackbone,
} from "../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { databaseUrl } from "../test/support/template.js";
import { cpuBetween, cpuSeconds } from "./support/processes.js";
import { hotspots, percentile, report } from "./support/report.js";
import {
  commitsSoFar,
  resetStatements,
  statementsRun,
  topStatements,
} from "./support/statements.js";
import { QUICK, size } from "./support/scale.js";

const COMMANDS = Number(process.env.DV_BENCH_COMMANDS ?? size(20_000, 500));
const BATCH = 100;
/** Jobs handled at once, and connections to PostgreSQL, on both sides. */
const CONCURRENCY = 16;
const POOL = 10;
/** Jobs pulled ahead: graphile-worker's local queue in its batched configuration, our prefetch. */
const PREFETCH = 500;

/**
 * A driver that touches nothing: it answers with what the command asked for, so what is measured
 * is the platform around it.
 */
const noop: Driver = {
  prepare: async () => {},
  // Its prepare is instant and touches nothing: the task starts with the effect.
  startsWithEffect: () => true,
  apply: async (_tx, request) => ({
    vlan_id: request.data.vlan_id,
    cidr: request.data.cidr,
    gateway: "10.20.0.1",
  }),
};

interface Run {
  readonly seconds: number;
  readonly latencies: number[];
  readonly cpu: Record<string, number>;
  /** SQL statements and committed transactions per command, producer included. */
  readonly statements: number;
  readonly commits: number;
}

/** Commits `COMMANDS` in batches with `commit(batch)`; returns each id's commit time. */
async function produce(
  commit: (ids: string[]) => Promise<void>,
): Promise<{ committed: Map<string, number>; started: number }> {
  const committed = new Map<string, number>();
  const started = Date.now();
  for (let i = 0; i < COMMANDS; i += BATCH) {
    const ids = Array.from({ length: Math.min(BATCH, COMMANDS - i) }, () => newId());
    await commit(ids);
    const at = Date.now();
    for (const id of ids) committed.set(id, at);
  }
  return { committed, started };
}

let b: Backbone;
let peer: TestDatabase;
beforeAll(async () => {
  b = await startBackbone();
  peer = await createTestDatabase();
});
afterAll(async () => {
  await peer?.drop();
  await b?.close();
});

async function ours(): Promise<Run> {
  const spec = domainCommands.nett.apply;
  if (!spec) throw new Error("no nett.apply command");
  const db = await b.t.connect(POOL);
  const worker = new Worker({
    ...FAST_WORKERS,
    service: "nett",
    db,
    js: b.nats.js,
    driver: noop,
    inbox: b.services.inbox,
    outbox: b.services.outbox,
    tasks: b.services.tasks,
    deadLetters: b.services.deadLetters,
    log: createLogger({
      level: process.env.DV_TEST_LOG ?? "silent",
      service: "bench",
      datacenterId: "dc1",
    }),
    metrics: b.metrics,
    newId,
    now: () => new Date(),
    random: Math.random,
    concurrency: CONCURRENCY,
    prefetch: PREFETCH,
    ackWaitMs: 30_000,
  });
  await worker.start();
  await resetStatements(b.t.admin);
  const commitsBefore = await commitsSoFar(b.t.admin);
  const cpuBefore = cpuSeconds();
  const { committed, started } = await produce((ids) =>
    inTransaction(b.services.db, async (tx) => {
      const resources = ids.map(() => newId());
      const tasks = await b.services.tasks.createMany(
        tx,
        ids.map((id, i) => ({
          operation: "network.create",
          resourceKind: "network",
          resourceId: resources[i] ?? "",
          datacenterId: "dc1",
          actor: "bench",
          correlationId: id,
        })),
      );
      const rows = ids.map((id, i) => {
        const envelope = createEnvelope(
          spec.command,
          {
            resource_kind: "network",
            resource_id: resources[i] ?? "",
            generation: 1,
            task_id: tasks[i]?.id ?? null,
            step: "apply",
            vlan_id: 100,
            cidr: "10.20.0.0/28",
          },
          {
            id,
            time: new Date(),
            subject: resources[i] ?? "",
            actor: "bench",
            correlationId: id,
            datacenterId: "dc1",
          },
        );
        return { id, subject: spec.command.subject, envelope, headers: messageHeaders(id) };
      });
      await b.services.outbox.enqueue(tx, rows);
    }),
  );
  const consumer = workerConsumer("nett");
  await eventually(
    async () => {
      const [row] = await b.t.admin.query<{ n: string }>(
        "/* bench */ SELECT count(*) AS n FROM runtime.inbox WHERE consumer = $1",
        [consumer],
      );
      return Number(row?.n) >= COMMANDS ? true : undefined;
    },
    900_000,
    `${COMMANDS} commands to be handled`,
  );
  const cpu = cpuBetween(cpuBefore, cpuSeconds());
  await worker.stop();
  const statements = (await statementsRun(b.t.admin)) / COMMANDS;
  const commits = ((await commitsSoFar(b.t.admin)) - commitsBefore) / COMMANDS;
  hotspots(
    "dispatch",
    "dataverket: SQL by execution time (pg_stat_statements)",
    await topStatements(b.t.admin, 8, "dispatch"),
  );
  const handled = await b.t.admin.query<{ message_id: string; at: string }>(
    "/* bench */ SELECT message_id, (extract(epoch FROM handled_at) * 1000)::float8 AS at FROM runtime.inbox WHERE consumer = $1",
    [consumer],
  );
  const latencies = handled.map((r) => Number(r.at) - (committed.get(r.message_id) ?? NaN));
  const last = Math.max(...handled.map((r) => Number(r.at)));
  const [started_] = await b.t.admin.query<{ n: string }>(
    "/* bench */ SELECT count(*) AS n FROM task.tasks WHERE state = 'started'",
  );
  // Every command did what it should: handled once, and its task started.
  expect(handled.length).toBe(COMMANDS);
  const [dead] = await b.t.admin.query<{ n: string }>(
    "/* bench */ SELECT count(*) AS n FROM runtime.dead_letters",
  );
  expect(Number(dead?.n)).toBe(0);
  expect(Number(started_?.n)).toBe(COMMANDS);
  return { seconds: (last - started) / 1000, latencies, cpu, statements, commits };
}

async function graphile(options: { batched: boolean }): Promise<Run> {
  const events: WorkerEvents = new EventEmitter();
  const completed = new Map<string, number>();
  let errors = 0;
  events.on("job:complete", ({ job, error }) => {
    if (error) errors++;
    completed.set((job.payload as { id: string }).id, Date.now());
  });
  const connectionString = databaseUrl(peer.name);
  const runner: Runner = await runGraphile({
    connectionString,
    concurrency: CONCURRENCY,
    maxPoolSize: POOL,
    pollInterval: 1_000,
    noHandleSignals: true,
    logger: silentGraphileLogger,
    events,
    // These are preset options in graphile-worker (0.17 and 0.18): given at the top level they were
    // ignored ("Do not know how to convert config option 'localQueue'"), and the "batched" run
    // measured the defaults a second time.
    ...(options.batched
      ? {
          preset: {
            worker: {
              localQueue: { size: PREFETCH },
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
            },
          },
        }
      : {}),
    taskList: { noop: async () => {} },
  });
  // The producer adds jobs through its own pool, as ours commits through the services' pool.
  const utils = await makeWorkerUtils({ connectionString, logger: silentGraphileLogger });
  await utils.addJobs([{ identifier: "noop", payload: { id: "warm-up" } }]);
  await eventually(async () => (completed.has("warm-up") ? true : undefined), 30_000, "warm-up");
  completed.clear();
  await resetStatements(peer.admin);
  const commitsBefore = await commitsSoFar(peer.admin);
  const cpuBefore = cpuSeconds();
  const { committed, started } = await produce(async (ids) => {
    await utils.addJobs(ids.map((id) => ({ identifier: "noop", payload: { id } })));
  });
  await eventually(
    async () => (completed.size >= COMMANDS ? true : undefined),
    900_000,
    `${COMMANDS} graphile-worker jobs to complete`,
  );
  const cpu = cpuBetween(cpuBefore, cpuSeconds());
  await runner.stop();
  const statements = (await statementsRun(peer.admin)) / COMMANDS;
  const commits = ((await commitsSoFar(peer.admin)) - commitsBefore) / COMMANDS;
  await utils.release();
  const [left] = await peer.admin.query<{ n: string }>(
    "/* bench */ SELECT count(*) AS n FROM graphile_worker._private_jobs",
  );
  expect(errors).toBe(0);
  expect(Number(left?.n)).toBe(0);
  const latencies = [...completed].map(([id, at]) => at - (committed.get(id) ?? NaN));
  const last = Math.max(...completed.values());
  return { seconds: (last - started) / 1000, latencies, cpu, statements, commits };
}

const silentGraphileLogger = new GraphileLogger(() => () => {});

function figures(label: string, r: Run) {
  return {
    [`${label}, throughput`]: [COMMANDS / r.seconds, "cmd/s"],
    [`${label}, commit to completion p50`]: [percentile(r.latencies, 50), "ms"],
    [`${label}, p95`]: [percentile(r.latencies, 95), "ms"],
    [`${label}, p99`]: [percentile(r.latencies, 99), "ms"],
    [`${label}, SQL statements per command`]: [r.statements, "statements"],
    [`${label}, transactions committed per command`]: [r.commits, "commits"],
    [`${label}, CPU (PostgreSQL)`]: [r.cpu.postgres ?? 0, "s"],
    [`${label}, CPU (NATS)`]: [r.cpu["nats-server"] ?? 0, "s"],
    [`${label}, CPU (Node: producer, relay, worker)`]: [r.cpu["bench (load generator)"] ?? 0, "s"],
  } as const;
}

describe("dispatch", () => {
  it(`${COMMANDS} commands, ours and graphile-worker's, ${CONCURRENCY} at once`, async () => {
    const dv = await ours();
    const plain = await graphile({ batched: false });
    const batched = await graphile({ batched: true });
    const best = Math.max(COMMANDS / plain.seconds, COMMANDS / batched.seconds);
    report("dispatch", {
      ...figures("dataverket", dv),
      ...figures("graphile-worker (defaults)", plain),
      ...figures("graphile-worker (local queue 500, batched completion)", batched),
      "ratio, dataverket ÷ best graphile-worker": [
        COMMANDS / dv.seconds / best,
        "×",
        QUICK ? undefined : { atLeast: 1 },
      ],
    });
  });
});
