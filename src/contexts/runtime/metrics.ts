// The runtime context's gauges, read from PostgreSQL at scrape time: dead letters waiting for an
// operator, and tenant shards no replica holds.
import { Gauge } from "prom-client";
import { metricOnce, type Registry } from "../../observability/index.js";
import type { DeadLetterStore } from "./dead-letters.js";
import type { LeaseStore } from "./leases.js";

/**
 * `dataverket_dead_letters_open{service,reason}`, read from PostgreSQL on every scrape. Registered
 * by the controller role only, so a fleet reports each dead letter once.
 */
export function registerDeadLetterMetrics(
  deadLetters: Pick<DeadLetterStore, "openByService">,
  metrics: Registry,
): void {
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
          for (const row of await deadLetters.openByService())
            this.set({ service: row.service, reason: row.reason }, row.count);
        },
      }),
  );
}

/**
 * `dataverket_shards_unheld`, read from PostgreSQL at scrape time: how many of the `shards` tenant
 * shards no replica holds a live lease on, so nobody reconciles their resources.
 */
export function registerShardMetrics(
  leases: Pick<LeaseStore, "list">,
  shards: number,
  metrics: Registry,
): void {
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
