import { Gauge } from "prom-client";
import { BackupStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import { metricOnce, type Registry } from "../observability/index.js";

/**
 * Registers `dataverket_db_last_backup_timestamp_seconds` and `dataverket_db_size_bytes` on
 * `metrics`, read from `db` at scrape time: how recent the newest good backup is, and how big the
 * database grows. Registering twice on one registry is harmless.
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
