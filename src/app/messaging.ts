import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { AdvisoryProcessor, OutboxRelay } from "../backbone/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import type { WorkerService } from "../messaging/index.js";
import type { Logger, Registry } from "../observability/index.js";
import { SimulatedDriver, Worker } from "../workers/index.js";
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
): Promise<OutboxRelay> {
  const relay = new OutboxRelay({
    db: services.db,
    outbox: services.outbox,
    js,
    log: log.child({ component: "outbox-relay" }),
    metrics,
  });
  await relay.start();
  lifecycle.add("outbox-relay", () => relay.stop());
  return relay;
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
