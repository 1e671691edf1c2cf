import { collectDefaultMetrics, Registry } from "prom-client";

/** The Prometheus registry type a process passes to modules that define metrics. */
export type { Registry } from "prom-client";

/**
 * Creates a process's metric registry with the standard Node.js process metrics
 * (`process_cpu_seconds_total`, `nodejs_heap_size_used_bytes`, …). Modules register their own
 * `dataverket_…` metrics on it; `/metrics` serves it.
 */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Returns the metric `name` of `registry`, creating it with `create` the first time: several
 * instances of a component (four workers, two relays) share one series family.
 */
export function metricOnce<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
