import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AdvisoryProcessor, OutboxRelay } from "../jetstream/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import type { WorkerService } from "../messaging/index.js";
import { Gauge } from "prom-client";
import { BackupStore, LeaseStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import { type Logger, metricOnce, type Registry } from "../observability/index.js";
import { serveSimulatorControl, SimulatedDriver, Worker } from "../workers/index.js";
import type { Services } from "./services.js";

/** Tunables of the workers. */
export interface WorkerSettings {
  readonly concurrency: number;
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly ackWaitMs: number;
  readonly simLatencyMs: number;
  readonly simFailureRate: number;
}

/** Starts the outbox relay; stopped by the lifecycle. */
export async function startRelay(
  services: Services,
  js: JetStreamClient,
  log: Logger,
  metrics: Registry,
  lifecycle: Lifecycle,
  /** Sites behind the link (`DV_NATS_REMOTE_DATACENTERS`) and the event retention (`DV_OUTBOX_RETAIN_MS`). */
  nats: { readonly remoteDatacenters: readonly string[]; readonly outboxRetainMs?: number } = {
    remoteDatacenters: [],
  },
): Promise<OutboxRelay> {
  const relay = new OutboxRelay({
    db: services.db,
    outbox: services.outbox,
    js,
    log: log.child({ component: "outbox-relay" }),
    metrics,
    remoteDatacenters: nats.remoteDatacenters,
    ...(nats.outboxRetainMs === undefined ? {} : { retainMs: nats.outboxRetainMs }),
  });
  await relay.start();
  lifecycle.add("outbox-relay", () => relay.stop());
  return relay;
}

/**
 * `dataverket_dead_letters_open{service,reason}`, read from PostgreSQL on every scrape. Registered
 * by the controller role only, so a fleet reports each dead letter once.
 */
export function registerDeadLetterMetrics(services: Services, metrics: Registry): void {
  metricOnce(
    metrics,
    "dataverket_dead_letters_open",
    () =>
      new Gauge({
        name: "dataverket_dead_letters_open",
        help: "Dead letters waiting for an operator to replay or discard them",
        labelNames: ["service", "reason"] as const,
        registers: [metrics],
        async collect() {
          this.reset();
          for (const row of await services.deadLetterStore.openByService())
            this.set({ service: row.service, reason: row.reason }, row.count);
        },
      }),
  );
}

/** `dataverket_tasks{state}`: how many tasks are in each state, read at scrape time. */
export function registerTaskMetrics(services: Services, metrics: Registry): void {
  metricOnce(
    metrics,
    "dataverket_tasks",
    () =>
      new Gauge({
        name: "dataverket_tasks",
        help: "Tasks by state",
        labelNames: ["state"] as const,
        registers: [metrics],
        async collect() {
          this.reset();
          for (const row of await services.taskStore.countByState())
            this.set({ state: row.state }, row.count);
        },
      }),
  );
}

/**
 * `dataverket_db_last_backup_timestamp_seconds` and `dataverket_db_size_bytes`, read from
 * PostgreSQL at scrape time: how recent the newest good backup is, and how big the database grows.
 */
export function registerDatabaseMetrics(db: Database, metrics: Registry): void {
  const backups = new BackupStore(db);
  metricOnce(
    metrics,
    "dataverket_db_last_backup_timestamp_seconds",
    () =>
      new Gauge({
        name: "dataverket_db_last_backup_timestamp_seconds",
        help: "When the newest succeeded backup finished, as Unix time (0 when there is none)",
        registers: [metrics],
        async collect() {
          const at = await backups.lastSucceededAt();
          this.set(at ? at.getTime() / 1000 : 0);
        },
      }),
  );
  metricOnce(
    metrics,
    "dataverket_db_size_bytes",
    () =>
      new Gauge({
        name: "dataverket_db_size_bytes",
        help: "Size of the database on disk (pg_database_size)",
        registers: [metrics],
        async collect() {
          const [row] = await db.query<{ bytes: string | number }>(
            "SELECT pg_database_size(current_database()) AS bytes",
          );
          this.set(Number(row?.bytes ?? 0));
        },
      }),
  );
}

/**
 * `dataverket_task_oldest_unfinished_seconds` and `dataverket_shards_unheld`, read from
 * PostgreSQL at scrape time: work that is not moving, and shards no replica reconciles.
 */
export function registerProgressMetrics(
  services: Services,
  shards: number,
  metrics: Registry,
): void {
  metricOnce(
    metrics,
    "dataverket_task_oldest_unfinished_seconds",
    () =>
      new Gauge({
        name: "dataverket_task_oldest_unfinished_seconds",
        help: "Age of the oldest task that has not ended (0 when none is open)",
        registers: [metrics],
        async collect() {
          this.set(await services.taskStore.oldestUnfinishedSeconds());
        },
      }),
  );
  const leases = new LeaseStore(services.db);
  metricOnce(
    metrics,
    "dataverket_shards_unheld",
    () =>
      new Gauge({
        name: "dataverket_shards_unheld",
        help: "Tenant shards no controller replica holds a live lease on (nobody reconciles them)",
        registers: [metrics],
        async collect() {
          const live = (await leases.list()).filter((l) => l.live && l.shard < shards).length;
          this.set(shards - live);
        },
      }),
  );
}

type PoolStats = () => { total: number; idle: number; waiting: number; max: number };
const poolsByRegistry = new WeakMap<Registry, Map<string, PoolStats>>();

/**
 * `dataverket_db_pool_connections{pool,state}`: the connections of each PostgreSQL pool of the
 * process (`main`, `leases`), read at scrape time. Embedded PGlite has no pool: nothing then.
 */
export function registerPoolMetrics(db: Database, pool: string, metrics: Registry): void {
  if (!db.poolStats) return;
  let pools = poolsByRegistry.get(metrics);
  if (!pools) {
    pools = new Map();
    poolsByRegistry.set(metrics, pools);
    const registered = pools;
    new Gauge({
      name: "dataverket_db_pool_connections",
      help: "PostgreSQL pool connections by state: total (open), idle, waiting (callers queued for one), max",
      labelNames: ["pool", "state"] as const,
      registers: [metrics],
      collect() {
        for (const [name, read] of registered) {
          const stats = read();
          for (const state of ["total", "idle", "waiting", "max"] as const)
            this.set({ pool: name, state }, stats[state]);
        }
      },
    });
  }
  pools.set(pool, db.poolStats.bind(db));
}

/** Starts the dead-letter processor of JetStream advisories; stopped by the lifecycle. */
export async function startAdvisoryProcessor(
  services: Services,
  js: JetStreamClient,
  jsm: JetStreamManager,
  log: Logger,
  lifecycle: Lifecycle,
): Promise<AdvisoryProcessor> {
  const processor = new AdvisoryProcessor({
    js,
    jsm,
    inbox: services.inbox,
    deadLetters: services.deadLetters,
    log: log.child({ component: "dead-letters" }),
    now: services.now,
  });
  await processor.start();
  lifecycle.add("advisory-processor", () => processor.stop());
  return processor;
}

/** Starts a worker of `service` with the simulated driver; stopped by the lifecycle. */
export async function startWorker(
  service: WorkerService,
  services: Services,
  js: JetStreamClient,
  settings: WorkerSettings,
  log: Logger,
  metrics: Registry,
  lifecycle: Lifecycle,
  /** The datacenter of this worker when sites have workers of their own. */
  site?: string,
): Promise<Worker> {
  const worker = new Worker({
    service,
    db: services.db,
    js,
    driver: new SimulatedDriver({
      store: services.simulator,
      latencyMs: settings.simLatencyMs,
      failureRate: settings.simFailureRate,
      random: Math.random,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      site,
    }),
    inbox: services.inbox,
    outbox: services.outbox,
    tasks: services.tasks,
    deadLetters: services.deadLetters,
    log: log.child({ component: "worker", worker: service }),
    metrics,
    newId: services.newId,
    now: services.now,
    random: Math.random,
    concurrency: settings.concurrency,
    maxAttempts: settings.maxAttempts,
    backoffBaseMs: settings.backoffBaseMs,
    backoffMaxMs: settings.backoffMaxMs,
    ackWaitMs: settings.ackWaitMs,
  });
  await worker.start();
  lifecycle.add(`worker-${service}`, () => worker.stop());
  return worker;
}

/**
 * Answers the simulator controls of a worker service on `dv.rpc.<service>.sim_*` (what
 * `dv sim fault` and `dv sim drift` ask); stopped by the lifecycle.
 */
export function startSimulatorControl(
  service: WorkerService,
  services: Services,
  nc: NatsConnection,
  log: Logger,
  lifecycle: Lifecycle,
): void {
  const control = serveSimulatorControl({
    nc,
    service,
    store: services.simulator,
    log: log.child({ component: "simulator-control", worker: service }),
  });
  lifecycle.add(`simulator-control-${service}`, () => control.stop());
}
