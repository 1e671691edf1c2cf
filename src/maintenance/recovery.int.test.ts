// The full recovery cycle on a real PostgreSQL server (seed 002: a backup that was never restored
// is not a backup): networks reconciled to Ready by real workers, a backup taken while it all
// runs, the control plane stopped, every schema destroyed, the backup restored — and the counts,
// the allocations and the invariants are what they were. The restore time is printed.
import { mkdtempSync, writeFileSync } from "node:fs";
import { createWriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type Plane, startPlane } from "../../test/support/plane.js";
import { databaseUrl } from "../../test/support/template.js";
import { OWNED_SCHEMAS } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { createLogger } from "../observability/index.js";
import { BackupService } from "./backup.js";
import { checkInvariants, tableCounts } from "./facts.js";
import { MANIFEST_FILE, manifestOf } from "./manifest.js";
import { restoreDatabase } from "./restore.js";

const NETWORKS = 40;

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ controllers: true, workers: ["nett"] });
});
afterAll(async () => p.close());

const query = <Row extends Record<string, unknown>>(text: string, params?: readonly unknown[]) =>
  p.t.admin.query<Row>(text, params);

describe("a backup of a working control plane", () => {
  it("restores into a destroyed database with every row, allocation and invariant intact", async () => {
    const created = [];
    for (let i = 0; i < NETWORKS; i++)
      created.push(await p.request("network", `n${i}`, { prefixLength: 28 }));
    await eventually(
      async () => {
        const [row] = await query<{ n: number }>(
          "SELECT count(*)::int AS n FROM task.tasks WHERE state = 'succeeded'",
        );
        return row?.n === NETWORKS ? true : undefined;
      },
      60_000,
      `the ${NETWORKS} networks to be Ready`,
    );

    const dir = mkdtempSync(join(tmpdir(), "dv-recovery-"));
    const backups = new BackupService({ db: p.t.admin, newId, now: () => new Date() });
    const running = await backups.start({ actor: "test", correlationId: "test" });
    await pipeline(running.stream, createWriteStream(join(dir, running.fileName)));
    const manifest = manifestOf(await running.finished);
    expect(manifest).toBeDefined();
    writeFileSync(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
    expect(manifest?.tables?.["inventory.resources"]).toBe(NETWORKS);
    const allocations = async () =>
      query<{ vlans: number; prefixes: number }>(
        `SELECT (SELECT count(*)::int FROM inventory.vlans WHERE owner_id IS NOT NULL) AS vlans,
                (SELECT count(*)::int FROM inventory.ip_blocks WHERE owner_id IS NOT NULL) AS prefixes`,
      );
    const heldBefore = await allocations();
    expect(heldBefore).toEqual([{ vlans: NETWORKS, prefixes: NETWORKS }]);

    // The control plane stops; then the data is gone.
    await p.lifecycle.stop("restore");
    const before = await tableCounts(query, OWNED_SCHEMAS);
    for (const schema of OWNED_SCHEMAS) await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    expect(await tableCounts(query, OWNED_SCHEMAS)).toEqual({});

    const result = await restoreDatabase({
      target: { url: databaseUrl(p.t.name), pgliteDir: join(dir, "unused") },
      path: dir,
      actor: "test",
      force: false,
      // What is left connected are this test's own idle pools; every control-plane loop stopped.
      evenIfConnected: true,
      log: createLogger({ level: "silent", service: "test", datacenterId: "dc1" }),
      newId,
      now: () => new Date(),
    });
    console.log(
      `restore of ${NETWORKS} networks (${manifest?.files[0]?.bytes ?? 0} bytes, ${result.tablesVerified} tables): ${result.durationMs} ms`,
    );
    expect(result.tablesVerified).toBe(Object.keys(manifest?.tables ?? {}).length);
    expect(result.invariants.length).toBeGreaterThanOrEqual(7);
    expect(result.invariants.filter((i) => i.violations > 0)).toEqual([]);

    const after = await tableCounts(query, OWNED_SCHEMAS);
    // Every table as the backup had it, plus the restore's own record and audit entry.
    const backedUp = manifest?.tables ?? {};
    expect(after).toEqual({
      ...backedUp,
      "runtime.restores": (backedUp["runtime.restores"] ?? 0) + 1,
      "audit.records": (backedUp["audit.records"] ?? 0) + 1,
    });
    // The tenants' data did not move between the backup and the stop: it is all back.
    for (const table of Object.keys(before).filter((t) => /^(tenancy|inventory|task)\./.test(t)))
      expect([table, after[table]]).toEqual([table, before[table]]);
    expect(await allocations()).toEqual(heldBefore);
    const [task] = await query<{ n: number }>(
      "SELECT count(*)::int AS n FROM task.tasks WHERE state = 'succeeded'",
    );
    expect(task?.n).toBe(NETWORKS);

    // The checker sees a broken invariant: a task without its history.
    await query(
      `INSERT INTO task.tasks (id, operation, resource_kind, resource_id, resource_generation, tenant_id,
                               project_id, environment_id, datacenter_id, actor, correlation_id, state)
       SELECT gen_random_uuid(), operation, resource_kind, resource_id, resource_generation, tenant_id,
              project_id, environment_id, datacenter_id, actor, correlation_id, 'queued'
         FROM task.tasks LIMIT 1`,
    );
    const broken = await checkInvariants(query, OWNED_SCHEMAS);
    expect(broken.filter((i) => i.violations > 0)).toEqual([
      { description: "every task has the history of its creation", violations: 1 },
    ]);
  }, 180_000);
});
