// Scenario allocation-race: 32 clients, each on its own connection, reserve VLANs, prefixes and
// servers of the test platform for 2 minutes (15 s in --quick) and release what they hold, with
// random aborts: a transaction rolled back after its reservations, or its connection killed in
// the middle (pg_terminate_backend). Checked, against what every client was told:
// - no VLAN, server or address was given to two owners (overlapping prefixes included);
// - no reservation ended in a deadlock (two clients each holding part of what the other waits for);
// - every committed reservation is a row, exactly as the client was told; every aborted one, and
//   every release, left none (no leaked reservation);
// - once every owner is released (what the reconcilers do on delete), every pool is whole again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { syncPlatformDirectory } from "../controllers/index.js";
import { createServices } from "../src/app/index.js";
import { type Database, inTransaction, SqlState, sqlStateOf } from "../src/db/index.js";
import { newId, PoolExhaustedError } from "../src/kernel/index.js";
import { createLogger } from "../src/observability/index.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { PLATFORM_FIXTURE } from "../test/support/plane.js";
import { record, size } from "./support/report.js";

const CLIENTS = 32;
const DURATION_MS = size(120_000, 15_000);
const POOL = "dc1-tenant";

let t: TestDatabase;
let db: Database;
beforeAll(async () => {
  t = await createTestDatabase();
  const log = createLogger({ level: "silent", service: "chaos", datacenterId: "dc1" });
  await syncPlatformDirectory(createServices(t.db, newId), PLATFORM_FIXTURE, log);
  db = await t.connect(CLIENTS + 2);
});
afterAll(async () => t.drop());

/** What one owner was told it holds. */
interface Held {
  vlans: number[];
  prefixes: string[];
  servers: string[];
}

class Aborted extends Error {}

describe("32 clients reserving with random aborts", () => {
  it("never assign anything twice, and leave exactly what was committed", async () => {
    const inventory = createServices(db, newId).inventory;
    const committed = new Map<string, Held>();
    // Attempted, not acknowledged: the outcome is unknown to the client (its connection died).
    const unknown = new Map<string, Held>();
    const aborted = new Set<string>();
    const released = new Set<string>();
    const counts = {
      commits: 0,
      rollbacks: 0,
      killed: 0,
      exhausted: 0,
      releases: 0,
      /** Releases that PostgreSQL aborted in a deadlock (tried again, as a reconciler would). */
      deadlocks: 0,
      reservation_deadlocks: 0,
    };
    const deadline = Date.now() + DURATION_MS;
    // A release as a reconciler makes it: a deadlock (PostgreSQL aborted this side) is tried again.
    const release = async (owner: string): Promise<void> => {
      for (;;) {
        try {
          await inTransaction(db, (tx) => inventory.releaseAll(tx, { kind: "network", id: owner }));
          return;
        } catch (err) {
          if (sqlStateOf(err) !== SqlState.DeadlockDetected) throw err;
          counts.deadlocks++;
        }
      }
    };

    const client = async (n: number) => {
      const mine: string[] = [];
      while (Date.now() < deadline) {
        const dice = Math.random();
        if (dice < 0.25 && mine.length > 0) {
          const [owner] = mine.splice(Math.floor(Math.random() * mine.length), 1);
          if (!owner) continue;
          await release(owner);
          committed.delete(owner);
          released.add(owner);
          counts.releases++;
          continue;
        }
        const owner = { kind: dice < 0.7 ? "network" : "server", id: newId() };
        const held: Held = { vlans: [], prefixes: [], servers: [] };
        const abort = Math.random();
        try {
          await inTransaction(db, async (tx) => {
            if (owner.kind === "network") {
              held.vlans.push(
                (await inventory.reserveVlan(tx, { networkPool: POOL, owner })).vlanId,
              );
              held.prefixes.push(
                (
                  await inventory.reservePrefix(tx, {
                    networkPool: POOL,
                    prefixLength: 24 + Math.floor(Math.random() * 5),
                    owner,
                  })
                ).prefix,
              );
            } else {
              const servers = await inventory.reserveServers(tx, {
                datacenterId: "dc1",
                machineClass: "m1-large",
                count: 1 + (n % 2),
                owner,
              });
              held.servers.push(...servers.map((s) => s.id));
            }
            if (abort < 0.2) throw new Aborted();
            if (abort < 0.3) {
              // The connection dies in the middle of the transaction.
              // (node-postgres answers a result with rows.)
              const result: unknown = await tx.execute("SELECT pg_backend_pid() AS pid");
              const me = (result as { rows: { pid: number }[] }).rows[0];
              unknown.set(owner.id, held);
              await t.admin.query("SELECT pg_terminate_backend($1)", [me?.pid]);
              await tx.execute("SELECT 1");
            }
          });
          unknown.delete(owner.id);
          committed.set(owner.id, held);
          mine.push(owner.id);
          counts.commits++;
        } catch (err) {
          if (err instanceof Aborted) {
            aborted.add(owner.id);
            counts.rollbacks++;
          } else if (err instanceof PoolExhaustedError) {
            aborted.add(owner.id);
            counts.exhausted++;
          } else if (unknown.has(owner.id)) counts.killed++;
          else if (sqlStateOf(err) === SqlState.DeadlockDetected) {
            // No reservation can be part of a deadlock: a server reservation holds none of the
            // servers while it waits and waits in name order; a network takes its VLAN before
            // its prefix, as every other does. PostgreSQL aborting one is a violation: the
            // client heard neither a reservation nor "exhausted".
            aborted.add(owner.id);
            counts.reservation_deadlocks++;
          } else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

    // What the database holds, by owner.
    const rows = await t.admin.query<{ owner: string; what: string; value: string }>(`
      SELECT owner_id::text AS owner, 'vlan' AS what, vlan_id::text AS value FROM inventory.vlans WHERE owner_id IS NOT NULL
      UNION ALL SELECT owner_id::text, 'prefix', prefix::text FROM inventory.ip_blocks WHERE owner_id IS NOT NULL
      UNION ALL SELECT owner_id::text, 'server', id::text FROM inventory.servers WHERE owner_id IS NOT NULL`);
    const actual = new Map<string, Held>();
    for (const r of rows) {
      const h = actual.get(r.owner) ?? { vlans: [], prefixes: [], servers: [] };
      if (r.what === "vlan") h.vlans.push(Number(r.value));
      else if (r.what === "prefix") h.prefixes.push(r.value);
      else h.servers.push(r.value);
      actual.set(r.owner, h);
    }
    const key = (h: Held) =>
      JSON.stringify([[...h.vlans].sort(), [...h.prefixes].sort(), [...h.servers].sort()]);
    // Committed: exactly what the client was told. Unknown: all of it or nothing (atomic).
    const lost = [...committed].filter(([o, h]) => key(actual.get(o) ?? emptyHeld()) !== key(h));
    const partial = [...unknown].filter(
      ([o, h]) => actual.has(o) && key(actual.get(o) ?? emptyHeld()) !== key(h),
    );
    const leaked = [...actual.keys()].filter((o) => !committed.has(o) && !unknown.has(o));
    // Given twice: any VLAN, server or address in two owners' hands (per what the DB and the
    // clients say), and overlapping prefixes.
    const holders = new Map<string, number>();
    for (const h of committed.values())
      for (const v of [...h.vlans.map((x) => `vlan ${x}`), ...h.servers.map((x) => `server ${x}`)])
        holders.set(v, (holders.get(v) ?? 0) + 1);
    const twice = [...holders].filter(([, n]) => n > 1).map(([v]) => v);
    const [overlaps] = await t.admin.query<{ n: number }>(`
      SELECT count(*)::int AS n FROM inventory.ip_blocks a JOIN inventory.ip_blocks b
        ON a.pool_id = b.pool_id AND a.id < b.id AND a.prefix && b.prefix`);

    // Reconcile: every owner left is released; the pools are whole again.
    for (const owner of [...committed.keys(), ...unknown.keys()]) await release(owner);
    const [left] = await t.admin.query<{ vlans: number; blocks: number; servers: number }>(`
      SELECT (SELECT count(*) FROM inventory.vlans WHERE owner_id IS NOT NULL)::int AS vlans,
             (SELECT count(*) FROM inventory.ip_blocks WHERE owner_id IS NOT NULL)::int AS blocks,
             (SELECT count(*) FROM inventory.servers WHERE owner_id IS NOT NULL)::int AS servers`);
    const [freeBlocks] = await t.admin.query<{ prefixes: string }>(
      "SELECT string_agg(prefix::text, ',' ORDER BY prefix) AS prefixes FROM inventory.ip_blocks WHERE owner_id IS NULL",
    );
    const leakedAfter = (left?.vlans ?? 0) + (left?.blocks ?? 0) + (left?.servers ?? 0);

    record({
      scenario: "allocation-race",
      faults: counts.rollbacks + counts.killed,
      operations:
        counts.commits + counts.rollbacks + counts.killed + counts.exhausted + counts.releases,
      lost: lost.length,
      duplicated: twice.length + (overlaps?.n ?? 0),
      violations: partial.length + leaked.length + leakedAfter + counts.reservation_deadlocks,
      figures: { ...counts, reservations_held_at_end: rows.length },
    });
    expect(lost).toEqual([]);
    expect(partial).toEqual([]);
    expect(leaked).toEqual([]);
    expect(counts.reservation_deadlocks).toBe(0);
    expect(twice).toEqual([]);
    expect(overlaps).toEqual({ n: 0 });
    expect(left).toEqual({ vlans: 0, blocks: 0, servers: 0 });
    // The free blocks merged back into the pool's one prefix.
    expect(freeBlocks?.prefixes).toBe("10.64.0.0/12");
    // The run did contend and abort.
    expect(counts.commits).toBeGreaterThan(CLIENTS);
    expect(counts.rollbacks).toBeGreaterThan(0);
    expect(counts.killed).toBeGreaterThan(0);
  });
});

const emptyHeld = (): Held => ({ vlans: [], prefixes: [], servers: [] });
