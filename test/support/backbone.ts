// The messaging backbone on real services: a test database, a private nats-server with the
// declared topology, the outbox relay, the advisory processor, and workers as production wires them.
import {
  createServices,
  type Services,
  startAdvisoryProcessor,
  startRelay,
  startWorker,
  type WorkerSettings,
} from "../../src/app/index.js";
import {
  DEFAULT_TOPOLOGY,
  ensureTopology,
  type OutboxRelay,
  type TopologyOptions,
} from "../../src/jetstream/index.js";
import { inTransaction } from "../../src/db/index.js";
import { newId } from "../../src/kernel/index.js";
import { Lifecycle } from "../../src/lifecycle/index.js";
import {
  createEnvelope,
  domainCommands,
  type Envelope,
  messageHeaders,
  type WorkerService,
} from "../../src/messaging/index.js";
import {
  createLogger,
  createMetricsRegistry,
  type Registry,
} from "../../src/observability/index.js";
import type { Worker } from "../../src/workers/index.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { startTestNats, type TestNats } from "./nats.js";
import { ensureTemplate } from "./template.js";

export const FAST_WORKERS: WorkerSettings = {
  concurrency: 8,
  maxAttempts: 3,
  backoffBaseMs: 20,
  backoffMaxMs: 100,
  ackWaitMs: 2_000,
  simLatencyMs: 0,
  simFailureRate: 0,
};

/** A running backbone for a test file. */
export interface Backbone {
  readonly t: TestDatabase;
  readonly nats: TestNats;
  readonly services: Services;
  /** The relay in this process (undefined when started with `relay: false`). */
  readonly relay: OutboxRelay | undefined;
  readonly metrics: Registry;
  readonly lifecycle: Lifecycle;
  /** Starts a worker of `service` (stopped at close, or by `stop()` on it). */
  worker(service: WorkerService, settings?: Partial<WorkerSettings>): Promise<Worker>;
  /** A task for a resource, as the API would create it. */
  task(resourceId?: string): Promise<{ id: string; resourceId: string }>;
  /** Writes a command to the outbox, as a reconciler would; returns its envelope. */
  command(service: WorkerService, action: string, data: Record<string, unknown>): Promise<Envelope>;
  close(): Promise<void>;
}

/** Polls `check` until it returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
  what = "the condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ""}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts the backbone. */
export async function startBackbone(
  topology: Partial<TopologyOptions> = {},
  options: {
    relay?: boolean;
    /** Superuser URL of another PostgreSQL server than the test server to put the database on. */
    server?: string;
  } = {},
): Promise<Backbone> {
  const t = options.server
    ? await createTestDatabase({
        server: options.server,
        template: await ensureTemplate(options.server),
      })
    : await createTestDatabase();
  const nats = await startTestNats();
  await ensureTopology(nats.jsm, undefined, { ...DEFAULT_TOPOLOGY, ackWaitMs: 2_000, ...topology });
  // DV_TEST_LOG=debug shows what the backbone does while a test runs.
  const log = createLogger({
    level: process.env.DV_TEST_LOG ?? "silent",
    service: "test-backbone",
    datacenterId: "dc1",
  });
  const metrics = createMetricsRegistry();
  const lifecycle = new Lifecycle(log);
  const services = createServices(t.db, newId);
  // Without the relay here, only the `dv` processes a test starts publish the outbox.
  const relay =
    options.relay === false
      ? undefined
      : await startRelay({ services, js: nats.js, log, metrics, lifecycle });
  await startAdvisoryProcessor({ services, js: nats.js, jsm: nats.jsm, log, lifecycle });
  return {
    t,
    nats,
    services,
    relay,
    metrics,
    lifecycle,
    worker: (service, settings = {}) =>
      startWorker({
        service,
        services,
        js: nats.js,
        settings: { ...FAST_WORKERS, ...settings },
        log,
        metrics,
        lifecycle,
      }),
    async task(resourceId = newId()) {
      const task = await inTransaction(t.db, (tx) =>
        services.tasks.create(tx, {
          operation: "network.create",
          resourceKind: "network",
          resourceId,
          datacenterId: "dc1",
          actor: "user:test",
          correlationId: newId(),
        }),
      );
      return { id: task.id, resourceId };
    },
    async command(service, action, data) {
      const spec = domainCommands[service][action];
      if (!spec) throw new Error(`no ${service} command ${action}`);
      const correlationId = newId();
      const envelope = createEnvelope(spec.command, data as never, {
        id: newId(),
        time: new Date(),
        subject: String(data.resource_id),
        actor: "user:test",
        correlationId,
        datacenterId: "dc1",
      });
      await inTransaction(t.db, (tx) =>
        services.outbox.enqueue(tx, [
          {
            id: envelope.id,
            subject: spec.command.subject,
            envelope,
            headers: messageHeaders(correlationId),
          },
        ]),
      );
      return envelope;
    },
    async close() {
      await lifecycle.stop("test done");
      await nats.close();
      await t.drop();
    },
  };
}
