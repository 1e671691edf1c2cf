// The statements a reconcile pass and the relay send for a batch find their rows by index, not by
// reading the whole table: rows sent as JSON (`jsonb_to_recordset`) are taken by the planner for
// 100 whatever they hold, and a join of them with a table of a few thousand rows was planned as
// a scan of that table — every batch cost more as the tables grew (4.2 ms for a VLAN reservation
// in a bench of 19,500 VLANs, 4.4 ms to mark 15 outbox rows published among 20,000). PostgreSQL
// counts the sequential scans of the transaction (`pg_stat_xact_user_tables`); none may be of the
// tables below.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { seedNetworkPool } from "../../test/support/topology.js";
import { rowsOf, type Tx } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { AllocationStore } from "./inventory/index.js";
import { OutboxStore } from "./runtime/index.js";
import { TaskStore } from "./task/index.js";

const ROWS = 5_000;

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin.query(
    `INSERT INTO task.tasks (id, datacenter_id, operation, resource_kind, resource_id, state, actor, correlation_id, finished_at)
     SELECT gen_random_uuid(), 'dc1', 'network.create', 'network', gen_random_uuid(), 'succeeded', 'test', 'c', now()
       FROM generate_series(1, ${ROWS})`,
  );
  await t.admin.query(
    `INSERT INTO runtime.outbox (id, subject, envelope)
     SELECT gen_random_uuid(), 'dv.dc1.evt.network.ready', '{"data":{}}' FROM generate_series(1, ${ROWS})`,
  );
  await seedNetworkPool(t.db, {
    datacenter: "dc1",
    pool: "probe",
    vlans: { first: 1, last: 4000 },
    prefixes: ["10.64.0.0/16"],
  });
  // Three thousand of them taken.
  await t.admin.query(
    `UPDATE inventory.vlans SET owner_kind = 'network', owner_id = gen_random_uuid(), reserved_at = now()
      WHERE network_pool = 'probe' AND vlan_id <= 3000`,
  );
  await t.admin.query("ANALYZE task.tasks, runtime.outbox, inventory.vlans");
});
afterAll(async () => t.drop());

/** Sequential scans by table, as this connection counts them (not yet flushed to the totals). */
async function scans(tx: Tx): Promise<Map<string, number>> {
  const result = await tx.execute(
    sql.raw("SELECT schemaname || '.' || relname AS name, seq_scan FROM pg_stat_xact_user_tables"),
  );
  return new Map(
    rowsOf<{ name: string; seq_scan: string }>(result).map((r) => [r.name, Number(r.seq_scan)]),
  );
}

/** The tables `work` read by a sequential scan, run in a transaction of its own. */
async function scanned(work: (tx: Tx) => Promise<void>): Promise<string[]> {
  return t.db.transaction(async (tx) => {
    const before = await scans(tx);
    await work(tx);
    const after = await scans(tx);
    return [...after]
      .filter(([name, n]) => n > (before.get(name) ?? 0))
      .map(([name]) => name)
      .sort();
  });
}

async function open(n: number): Promise<{ id: string; resourceId: string }[]> {
  const rows = await t.admin.query<{ id: string; resource_id: string }>(
    `INSERT INTO task.tasks (id, datacenter_id, operation, resource_kind, resource_id, state, actor, correlation_id)
     SELECT gen_random_uuid(), 'dc1', 'network.create', 'network', gen_random_uuid(), 'queued', 'test', 'c'
       FROM generate_series(1, ${n}) RETURNING id, resource_id`,
  );
  return rows.map((r) => ({ id: r.id, resourceId: r.resource_id }));
}

describe(`among ${ROWS} rows`, () => {
  it("a pass's reads and writes of tasks look them up by index", async () => {
    const tasks = new TaskStore(t.db, newId);
    const mine = await open(3);
    const seen = await scanned(async (tx) => {
      const relevant = await tasks.relevantFor(
        tx,
        mine.map((m) => ({ id: m.resourceId, generation: 1 })),
      );
      expect([...relevant.keys()].sort()).toEqual(mine.map((m) => m.resourceId).sort());
      await tasks.describeWaits(
        tx,
        mine.map((m) => ({ taskId: m.id, message: "waiting for a probe" })),
      );
      const moved = await tasks.transitionMany(
        tx,
        mine.map((m) => ({ id: m.id, verb: "started" as const, input: { actor: "test" } })),
      );
      expect(moved).toHaveLength(3);
    });
    expect(seen.filter((name) => name.startsWith("task."))).toEqual([]);
  });

  it("the relay marks what it published, and a command done goes, by primary key", async () => {
    const outbox = new OutboxStore(t.db);
    const rows = await t.admin.query<{ id: string }>(
      "SELECT id::text FROM runtime.outbox ORDER BY id LIMIT 15",
    );
    const ids = rows.map((r) => r.id);
    const seen = await scanned((tx) => outbox.done(tx, ids.slice(0, 5)));
    expect(seen).not.toContain("runtime.outbox");
    const left = await t.admin.query<{ n: string }>(
      "SELECT count(*) AS n FROM runtime.outbox WHERE id = ANY($1::uuid[])",
      [ids],
    );
    expect(Number(left[0]?.n)).toBe(10);
  });

  it("a VLAN reservation finds who holds one already, and the lowest free ones, by index", async () => {
    const allocations = new AllocationStore(t.db, newId);
    const owners = Array.from({ length: 4 }, () => ({ kind: "network", id: newId() }));
    const seen = await scanned((tx) =>
      allocations.reserveMany(
        tx,
        owners.map((owner) => ({ owner, kind: "vlan" as const, networkPool: "probe" })),
      ),
    );
    expect(seen).not.toContain("inventory.vlans");
    const given = await t.admin.query<{ vlan_id: number }>(
      "SELECT vlan_id FROM inventory.vlans WHERE owner_id = ANY($1::uuid[]) ORDER BY vlan_id",
      [owners.map((o) => o.id)],
    );
    expect(given.map((g) => g.vlan_id)).toEqual([3001, 3002, 3003, 3004]);
  });
});
