import { setTimeout as delay } from "node:timers/promises";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { AdvisoryProcessor, OutboxRelay } from "../jetstream/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import type { WorkerService } from "../messaging/index.js";
import type { Logger, Registry } from "../observability/index.js";
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

/** Options of {@link startRelay}. */
export interface StartRelayOptions {
  readonly services: Services;
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly lifecycle: Lifecycle;
  /** Sites behind the link (`DV_NATS_REMOTE_DATACENTERS`) and the event retention (`DV_OUTBOX_RETAIN_MS`). */
  readonly nats?: {
    readonly remoteDatacenters: readonly string[];
    readonly outboxRetainMs?: number;
  };
}

/** Starts the outbox relay; stopped by the lifecycle. */
export async function startRelay(options: StartRelayOptions): Promise<OutboxRelay> {
  const { services, nats = { remoteDatacenters: [] } } = options;
  const relay = new OutboxRelay({
    db: services.db,
    outbox: services.outbox,
    js: options.js,
    log: options.log.child({ component: "outbox-relay" }),
    metrics: options.metrics,
    remoteDatacenters: nats.remoteDatacenters,
    ...(nats.outboxRetainMs === undefined ? {} : { retainMs: nats.outboxRetainMs }),
  });
  await relay.start();
  options.lifecycle.add("outbox-relay", () => relay.stop());
  return relay;
}

/** Options of {@link startAdvisoryProcessor}. */
export interface StartAdvisoryProcessorOptions {
  readonly services: Services;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
}

/** Starts the dead-letter processor of JetStream advisories; stopped by the lifecycle. */
export async function startAdvisoryProcessor(
  options: StartAdvisoryProcessorOptions,
): Promise<AdvisoryProcessor> {
  const { services } = options;
  const processor = new AdvisoryProcessor({
    js: options.js,
    jsm: options.jsm,
    inbox: services.inbox,
    deadLetters: services.deadLetters,
    log: options.log.child({ component: "dead-letters" }),
    now: services.now,
  });
  await processor.start();
  options.lifecycle.add("advisory-processor", () => processor.stop());
  return processor;
}

/** Options of {@link startWorker}. */
export interface StartWorkerOptions {
  readonly service: WorkerService;
  readonly services: Services;
  readonly js: JetStreamClient;
  readonly settings: WorkerSettings;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly lifecycle: Lifecycle;
  /** The datacenter of this worker when sites have workers of their own. */
  readonly site?: string | undefined;
}

/** Starts a worker of `service` with the simulated driver; stopped by the lifecycle. */
export async function startWorker(options: StartWorkerOptions): Promise<Worker> {
  const { service, services, settings } = options;
  const worker = new Worker({
    service,
    db: services.db,
    js: options.js,
    driver: new SimulatedDriver({
      store: services.simulator,
      latencyMs: settings.simLatencyMs,
      failureRate: settings.simFailureRate,
      random: Math.random,
      sleep: (ms) => delay(ms),
      site: options.site,
    }),
    inbox: services.inbox,
    outbox: services.outbox,
    tasks: services.tasks,
    deadLetters: services.deadLetters,
    log: options.log.child({ component: "worker", worker: service }),
    metrics: options.metrics,
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
  options.lifecycle.add(`worker-${service}`, () => worker.stop());
  return worker;
}

/** Options of {@link startSimulatorControl}. */
export interface StartSimulatorControlOptions {
  readonly service: WorkerService;
  readonly services: Services;
  readonly nc: NatsConnection;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
}

/**
 * Answers the simulator controls of a worker service on `dv.rpc.<service>.sim_*` (what
 * `dv sim fault` and `dv sim drift` ask); stopped by the lifecycle.
 */
export function startSimulatorControl(options: StartSimulatorControlOptions): void {
  const { service } = options;
  const control = serveSimulatorControl({
    nc: options.nc,
    service,
    store: options.services.simulator,
    log: options.log.child({ component: "simulator-control", worker: service }),
  });
  options.lifecycle.add(`simulator-control-${service}`, () => control.stop());
}
