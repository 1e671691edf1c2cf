import { Counter, Gauge, Histogram } from "prom-client";
import type { Logger, Registry } from "../observability/index.js";
import type { Clock } from "./clock.js";
import type { WorkQueue } from "./queue.js";

/** What a reconcile pass asks for next. */
export interface ReconcileResult {
  /** Look again after this long even if nothing changes (polling a slow dependency). */
  readonly requeueAfterMs?: number;
}

/**
 * Reconciles one key: reads desired and observed state afresh and moves one step towards the
 * desired state. Throwing means "retry with backoff"; throwing {@link TerminalError} means "stop
 * retrying" (the reconciler has put the reason in the resource's status).
 */
export interface Reconciler {
  reconcile(key: string, log: Logger): Promise<ReconcileResult | undefined>;
}

/** Thrown by a reconciler when retrying cannot help; the key is not retried until it changes. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  readonly code = "DV_TERMINAL";
}

/** Options of {@link Controller}. */
export interface ControllerOptions {
  readonly name: string;
  readonly reconciler: Reconciler;
  readonly queue: WorkQueue;
  readonly concurrency: number;
  readonly log: Logger;
  readonly clock: Clock;
  readonly metrics?: Registry;
  readonly newReconcileId?: () => string;
}

let metricsByRegistry = new WeakMap<Registry, ControllerMetrics>();

interface ControllerMetrics {
  readonly total: Counter<"controller" | "result">;
  readonly duration: Histogram<"controller">;
  readonly depth: Gauge<"controller">;
  readonly oldest: Gauge<"controller">;
  readonly retries: Counter<"controller">;
  readonly queues: Map<string, WorkQueue>;
}

function metricsFor(registry: Registry): ControllerMetrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const queues = new Map<string, WorkQueue>();
  m = {
    queues,
    total: new Counter({
      name: "dataverket_reconcile_total",
      help: "Reconcile passes by controller and result (success, requeue, error, terminal, panic)",
      labelNames: ["controller", "result"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "dataverket_reconcile_duration_seconds",
      help: "Duration of reconcile passes",
      labelNames: ["controller"] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    depth: new Gauge({
      name: "dataverket_workqueue_depth",
      help: "Keys waiting in a controller's work queue",
      labelNames: ["controller"] as const,
      registers: [registry],
      collect() {
        for (const [name, queue] of queues) this.set({ controller: name }, queue.length);
      },
    }),
    oldest: new Gauge({
      name: "dataverket_workqueue_oldest_seconds",
      help: "How long the longest-waiting key of a controller's queue has waited",
      labelNames: ["controller"] as const,
      registers: [registry],
      collect() {
        for (const [name, queue] of queues)
          this.set({ controller: name }, queue.oldestAgeMs() / 1000);
      },
    }),
    retries: new Counter({
      name: "dataverket_workqueue_retries_total",
      help: "Keys requeued with backoff after a failed pass",
      labelNames: ["controller"] as const,
      registers: [registry],
    }),
  };
  metricsByRegistry.set(registry, m);
  return m;
}

/** For tests that build many registries in one process. */
export function resetControllerMetrics(): void {
  metricsByRegistry = new WeakMap();
}

/**
 * Runs a reconciler over a work queue with bounded concurrency: one pass per key at a time,
 * backoff on failure, no retry on a terminal error, and a caught and counted "panic" for any
 * other throw — one bad key never stops the controller.
 */
export class Controller {
  readonly #o: ControllerOptions;
  readonly #metrics: ControllerMetrics | undefined;
  #loops: Promise<void>[] = [];
  #seq = 0;

  constructor(options: ControllerOptions) {
    this.#o = options;
    this.#metrics = options.metrics ? metricsFor(options.metrics) : undefined;
    this.#metrics?.queues.set(options.name, options.queue);
  }

  get queue(): WorkQueue {
    return this.#o.queue;
  }

  start(): void {
    for (let i = 0; i < this.#o.concurrency; i++) this.#loops.push(this.#loop());
  }

  /** Stops handing out keys and waits for the passes in flight. */
  async stop(): Promise<void> {
    this.#o.queue.shutdown();
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  async #loop(): Promise<void> {
    const { queue, reconciler, name, clock } = this.#o;
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const reconcileId = this.#o.newReconcileId?.() ?? `${name}-${++this.#seq}`;
      const log = this.#o.log.child({ key, reconcile_id: reconcileId });
      const started = clock.now();
      let result: string;
      try {
        const outcome = await reconciler.reconcile(key, log);
        queue.forget(key);
        if (outcome?.requeueAfterMs !== undefined) {
          queue.addAfter(key, outcome.requeueAfterMs);
          result = "requeue";
        } else {
          result = "success";
        }
      } catch (err) {
        if (err instanceof TerminalError) {
          queue.forget(key);
          result = "terminal";
          log.warn({ err: err.message }, "reconcile stopped: retrying cannot help");
        } else {
          const delay = queue.addRateLimited(key);
          this.#metrics?.retries.inc({ controller: name });
          result = err instanceof Error ? "error" : "panic";
          log.warn({ err, retry_in_ms: delay }, "reconcile failed; retrying");
        }
      } finally {
        queue.done(key);
      }
      this.#metrics?.total.inc({ controller: name, result });
      this.#metrics?.duration.observe({ controller: name }, (clock.now() - started) / 1000);
    }
  }
}
