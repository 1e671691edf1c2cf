import { Gauge } from "prom-client";
import type { Registry } from "../observability/index.js";
import type { Database } from "./database.js";

type PoolStats = NonNullable<Database["poolStats"]>;

/** The pools registered on each registry: one gauge family reads them all at scrape time. */
const poolsByRegistry = new WeakMap<Registry, Map<string, PoolStats>>();

/**
 * Registers `dataverket_db_pool_connections{pool,state}` on `metrics`: the connections of `db`'s
 * pool under the name `pool` (`main`, `leases`), read at scrape time. Each pool of the process is
 * registered once under its own name; embedded PGlite has no pool, and then nothing is registered.
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
