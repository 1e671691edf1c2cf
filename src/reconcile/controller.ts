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

/** How one key's pass of a batch ended. */
export type PassSettled =
  | { readonly ok: true; readonly result: ReconcileResult | undefined }
  | { readonly ok: false; readonly error: unknown };

/**
 * A reconciler that passes over many keys at once (reading and writing them together), with the
 * same per-key semantics as {@link Reconciler}: every key given is in the answer.
 */
export interface BatchReconciler extends Reconciler {
  reconcileMany(keys: readonly string[], log: Logger): Promise<Map<string, PassSettled>>;
}

/** A batch reconciler gets one loop per this many of the controller's concurrency. */
export const PASSES_PER_BATCH_LOOP = 8;

function isBatch(r: Reconciler): r is BatchReconciler {
  return typeof (r as Partial<BatchReconciler>).reconcileMany === "function";
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
  /**
   * Keys a {@link BatchReconciler} gets at most per batch: each free loop takes what is queued,
   * up to this many, so batches grow with the load and a lone key goes at once. Default 64.
   */
  readonly batchSize?: number;
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

  /**
   * Starts the loops: `concurrency` of them, each one pass at a time; for a batch reconciler one
   * loop per {@link PASSES_PER_BATCH_LOOP} of concurrency (at least one), each a batch at a time —
   * a batch is gathered while the one before it runs, so fewer, larger batches do the work of
   * many single passes with a fraction of the statements and commits.
   */
  start(): void {
    const loops = isBatch(this.#o.reconciler)
      ? Math.max(1, Math.ceil(this.#o.concurrency / PASSES_PER_BATCH_LOOP))
      : this.#o.concurrency;
    for (let i = 0; i < loops; i++) this.#loops.push(this.#loop());
  }

  /** Stops handing out keys and waits for the passes in flight. */
  async stop(): Promise<void> {
    this.#o.queue.shutdown();
    await Promise.all(this.#loops);
    this.#loops = [];
  }

  async #loop(): Promise<void> {
    const { queue, reconciler, name, clock } = this.#o;
    const batchSize = isBatch(reconciler) ? Math.max(1, this.#o.batchSize ?? 64) : 1;
    for (;;) {
      const keys = await queue.getBatch(batchSize);
      if (keys.length === 0) return;
      const reconcileId = this.#o.newReconcileId?.() ?? `${name}-${++this.#seq}`;
      const started = clock.now();
      let settled: Map<string, PassSettled>;
      if (isBatch(reconciler)) {
        const log = this.#o.log.child({ reconcile_id: reconcileId, keys: keys.length });
        try {
          settled = await reconciler.reconcileMany(keys, log);
        } catch (err) {
          settled = new Map(keys.map((key) => [key, { ok: false, error: err }]));
        }
      } else {
        const key = keys[0] as string;
        const log = this.#o.log.child({ key, reconcile_id: reconcileId });
        try {
          settled = new Map([[key, { ok: true, result: await reconciler.reconcile(key, log) }]]);
        } catch (err) {
          settled = new Map([[key, { ok: false, error: err }]]);
        }
      }
      const seconds = (clock.now() - started) / 1000;
      for (const key of keys) {
        const result = this.#settle(key, settled.get(key), reconcileId);
        this.#metrics?.total.inc({ controller: name, result });
        this.#metrics?.duration.observe({ controller: name }, seconds);
      }
    }
  }

  /** Requeues, forgets or retries a key after its pass; returns the metric's result label. */
  #settle(key: string, settled: PassSettled | undefined, reconcileId: string): string {
    const { queue, name } = this.#o;
    try {
      if (!settled) return "success"; // not asked about: nothing to do
      if (settled.ok) {
        queue.forget(key);
        if (settled.result?.requeueAfterMs !== undefined) {
          queue.addAfter(key, settled.result.requeueAfterMs);
          return "requeue";
        }
        return "success";
      }
      const err = settled.error;
      const log = this.#o.log.child({ key, reconcile_id: reconcileId });
      if (err instanceof TerminalError) {
        queue.forget(key);
        log.warn({ err: err.message }, "reconcile stopped: retrying cannot help");
        return "terminal";
      }
      const delay = queue.addRateLimited(key);
      this.#metrics?.retries.inc({ controller: name });
      log.warn({ err, retry_in_ms: delay }, "reconcile failed; retrying");
      return err instanceof Error ? "error" : "panic";
    } finally {
      queue.done(key);
    }
  }
}
