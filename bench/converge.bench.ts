// The whole loop on real services: networks requested as the API does it, reconciled under shard
// leases (a VLAN and a prefix reserved in PostgreSQL), commanded through the outbox and NATS,
// carried out by a nett worker (simulated driver, no latency), reported back, tasks succeeded.
// Then a backup of the resulting database with pg_dump, and its restore into a fresh database.
import { createWriteStream, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../test/support/database.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { databaseUrl } from "../test/support/template.js";
import { OWNED_SCHEMAS, restorePgDump } from "../src/db/index.js";
import { newId } from "../src/kernel/index.js";
import { BackupService } from "../src/maintenance/index.js";
import { percentile, report, timedPool } from "./support/report.js";
import { size } from "./support/scale.js";

const NETWORKS = size(200, 50);
const CONCURRENCY = 20;

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ controllers: true, workers: ["nett"] });
});
afterAll(async () => p.close());

describe("converge", () => {
  it(`${NETWORKS} networks from request to succeeded task, then a backup and a restore`, async () => {
    const rssBefore = process.memoryUsage().rss;
    const ids: string[] = [];
    const started = performance.now();
    await timedPool(
      Array.from({ length: NETWORKS }, (_, i) => i),
      CONCURRENCY,
      async (i) => {
        const { taskId } = await p.request("network", `conv-${i}`, { prefixLength: 28 });
        ids.push(taskId);
      },
    );
    for (const id of ids) await p.taskReaches(id, ["succeeded"], 300_000);
    const seconds = (performance.now() - started) / 1000;
    const tasks = await Promise.all(ids.map((id) => p.services.taskStore.get(id)));
    const latencies = tasks.map(
      (t) => (t.finishedAt?.getTime() ?? Number.NaN) - t.createdAt.getTime(),
    );
    expect(tasks.every((t) => t.state === "succeeded")).toBe(true);
    report("converge", {
      "networks to Ready, throughput": [NETWORKS / seconds, "networks/s"],
      "request to task succeeded, p50": [percentile(latencies, 50), "ms"],
      "request to task succeeded, p95": [percentile(latencies, 95), "ms"],
      "request to task succeeded, max": [Math.max(...latencies), "ms"],
      "RSS growth (controllers, relay, worker in one process)": [
        (process.memoryUsage().rss - rssBefore) / 2 ** 20,
        "MiB",
      ],
    });

    // pg_dump of what that left, streamed as dv db backup streams it; then its restore.
    const file = join(mkdtempSync(join(tmpdir(), "dv-bench-")), "backup.dump");
    const backups = new BackupService({ db: p.t.admin, newId, now: () => new Date() });
    const dumpStarted = performance.now();
    const backup = await backups.start({ actor: "bench", correlationId: "bench" });
    await pipeline(backup.stream, createWriteStream(file));
    const record = await backup.finished;
    const dumpSeconds = (performance.now() - dumpStarted) / 1000;
    expect(record.bytes).toBe(statSync(file).size);
    const target = await createTestDatabase();
    const restoreStarted = performance.now();
    await restorePgDump({
      url: databaseUrl(target.name),
      file,
      schemas: OWNED_SCHEMAS,
      expectedRows: record.tables ?? {},
    });
    const restoreSeconds = (performance.now() - restoreStarted) / 1000;
    const [row] = await target.admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM inventory.resources",
    );
    expect(Number(row?.n)).toBeGreaterThanOrEqual(NETWORKS);
    await target.drop();
    const [size] = await p.t.admin.query<{ bytes: string }>(
      "SELECT pg_database_size(current_database()) AS bytes",
    );
    report("backup", {
      "database size": [Number(size?.bytes) / 2 ** 20, "MiB"],
      "pg_dump archive": [statSync(file).size / 2 ** 20, "MiB"],
      "backup (pg_dump, streamed)": [dumpSeconds * 1000, "ms"],
      "restore (pg_restore into psql, one transaction)": [restoreSeconds * 1000, "ms"],
    });
  });
});
