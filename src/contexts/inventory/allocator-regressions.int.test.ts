// Regressions found by the allocator model (chaos/models.chaos.ts, `npm run chaos -- models`)
// and by chaos/allocation-race.chaos.ts: each case is the shrunk command sequence fast-check printed, replayed as an ordinary test
// against a real PostgreSQL, so the bug stays fixed without the model having to find it again.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import {
  actAs,
  ContextRole,
  type Database,
  inTransaction,
  sqlStateOf,
  type Tx,
} from "../../db/index.js";
import { newId, PoolExhaustedError } from "../../kernel/index.js";
import { InventoryStore, type Owner } from "./index.js";

let t: TestDatabase;
let store: InventoryStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new InventoryStore(t.db, newId);
});
afterAll(async () => t.drop());

const tx = <T>(fn: (q: Tx) => Promise<T>) => inTransaction(t.db, fn);

/** A datacenter of its own for a test, with a server pool or a network pool in it. */
async function seed(
  dc: string,
  pool:
    | { servers: { name: string; machineClass: string }[] }
    | { network: string; vlanRanges: { first: number; last: number }[]; prefixes: string[] },
): Promise<void> {
  await tx(async (q) => {
    await store.applyDatacenter(q, {
      name: dc,
      displayName: dc,
      site: "osl",
      failureDomain: "a",
      generation: 1,
      spec: {},
    });
    if ("servers" in pool) {
      await store.applyServerPool(q, {
        name: `${dc}-servers`,
        datacenterId: dc,
        generation: 1,
        servers: pool.servers.map((s) => ({ ...s, cpuCores: 8, memoryMib: 32768 })),
      });
    } else {
      const { network, vlanRanges, prefixes } = pool;
      await store.applyNetworkPool(q, {
        name: network,
        datacenterId: dc,
        generation: 1,
        vlanRanges,
        prefixes,
      });
    }
  });
}

/**
 * Runs `work` in a transaction on `db` and answers what it returned while the transaction is
 * still open: it commits when `end` is called. For forcing an interleaving of transactions.
 */
async function holdOpen<T>(
  db: Database,
  work: (q: Tx) => Promise<T>,
): Promise<{ result: T; end: () => Promise<void> }> {
  let end!: () => void;
  const ended = new Promise<void>((resolve) => (end = resolve));
  let answer!: (result: T) => void;
  const answered = new Promise<T>((resolve) => (answer = resolve));
  const done = inTransaction(db, async (q) => {
    answer(await work(q));
    await ended;
  });
  // A failure of `work` rejects `done` before anything is answered.
  const result = await Promise.race([answered, done.then(() => answered)]);
  return {
    result,
    end: async () => {
      end();
      await done;
    },
  };
}

/** Waits until `n` transactions of the test database wait for a lock. */
function waitingForLocks(n: number): Promise<true> {
  return eventually(
    async () => {
      const [row] = await t.admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      return (row?.n ?? 0) >= n ? true : undefined;
    },
    15_000,
    `${n} transactions waiting for a lock`,
  );
}

describe("allocator regressions", () => {
  it("answers a server reservation with the owner's servers of that machine class only, the same on the first call as on the next", async () => {
    // Seed -1774991480, shrunk to: reserveServers(o0, large, 1), reserveServers(o0, small, 1).
    // The second call answered [s0, s3] — the large server too — the first time and [s0] when
    // repeated, so a cluster whose machine class changed would provision (and bootstrap with) the
    // servers of its old class on one pass and not on the next.
    const dc = "regression-dc1";
    await seed(dc, {
      servers: [
        { name: "s0", machineClass: "small" },
        { name: "s3", machineClass: "large" },
      ],
    });
    const cluster: Owner = { kind: "cluster", id: newId() };
    const reserve = (machineClass: string) =>
      tx((q) =>
        store.reserveServers(q, { datacenterId: dc, machineClass, count: 1, owner: cluster }),
      );

    expect((await reserve("large")).map((s) => s.name)).toEqual(["s3"]);
    const first = await reserve("small");
    expect(first.map((s) => [s.name, s.machineClass])).toEqual([["s0", "small"]]);
    expect((await reserve("small")).map((s) => s.id)).toEqual(first.map((s) => s.id));
    // The owner holds both, as allocationsOf tells.
    expect((await store.allocationsOf(cluster.id)).servers.map((s) => s.name)).toEqual([
      "s0",
      "s3",
    ]);
  });

  it("carves a prefix from the lowest address among equally good fits, by address not by text", async () => {
    // Seed 1423990916, shrunk to: race(o0 prefix /29 ∥ o1 prefix /29), reserve(o2, prefix /29),
    // which left 10.0.0.8/29 and 10.0.0.40/29 free and got 10.0.0.40/29: the best-fit query
    // ordered by the text of the prefix ("10.0.0.40/29" < "10.0.0.8/29"). The same state, reached
    // one call after another:
    const dc = "regression-dc2";
    const pool = "regression-np2";
    await seed(dc, { network: pool, vlanRanges: [], prefixes: ["10.0.0.0/28", "10.0.0.32/28"] });
    const owners = Array.from({ length: 4 }, (): Owner => ({ kind: "network", id: newId() }));
    const reserve = (owner: Owner) =>
      tx((q) => store.reservePrefix(q, { networkPool: pool, prefixLength: 29, owner }));
    const taken = [];
    for (const owner of owners.slice(0, 3)) taken.push((await reserve(owner)).prefix);
    expect(taken).toEqual(["10.0.0.0/29", "10.0.0.8/29", "10.0.0.32/29"]);
    await tx((q) => store.releaseAll(q, owners[1]!));
    // Free now: 10.0.0.8/29 and 10.0.0.40/29, both exact fits; the lower address comes first.
    expect(await reserve(owners[3]!)).toEqual({ prefix: "10.0.0.8/29", datacenterId: dc });
  });

  it("ends two server reservations that race for the same servers as one after the other would, not in a deadlock", async () => {
    // Seed -936120725, race(o1 servers small ×3 ∥ o0 servers small ×3): one call failed with
    // PostgreSQL's "deadlock detected". Each call kept the servers it could take at once and
    // then waited for the rest, which the other had taken. Here the interleaving is forced with
    // two other transactions that lock servers and let go: B waits for s0 first, then A takes
    // s2 and waits for s0 too; when s0 and s1 are free, B holds s0 and s1 and wants s2.
    const dc = "regression-dc3";
    await seed(dc, {
      servers: ["s0", "s1", "s2"].map((name) => ({ name, machineClass: "small" })),
    });
    const others = await t.connect(2);
    /** Locks the servers in a transaction of its own; `end` lets go of them. */
    const lock = async (names: string[]) =>
      (
        await holdOpen(others, async (q) => {
          await actAs(q, ContextRole.inventory);
          await q.execute(
            sql`SELECT id FROM inventory.servers WHERE datacenter_id = ${dc} AND name IN ${names} FOR UPDATE`,
          );
        })
      ).end;
    const reserve = (db: Database, count: number) => {
      const owner: Owner = { kind: "cluster", id: newId() };
      return inTransaction(db, (q) =>
        store.reserveServers(q, { datacenterId: dc, machineClass: "small", count, owner }),
      ).then((got) => ({ owner, names: got.map((s) => s.name) }));
    };

    const freeS0S1 = await lock(["s0", "s1"]);
    const freeS2 = await lock(["s2"]);
    const b = reserve(t.db, 3);
    await waitingForLocks(1);
    await freeS2();
    const a = reserve(t.db, 2);
    await waitingForLocks(2);
    await freeS0S1();
    const [ofA, ofB] = await Promise.allSettled([a, b]);

    // As if B had gone first: B has all three, A hears the pool is exhausted.
    expect(ofB).toMatchObject({ status: "fulfilled", value: { names: ["s0", "s1", "s2"] } });
    expect(ofA).toMatchObject({ status: "rejected", reason: expect.any(PoolExhaustedError) });
    expect(ofA.status === "rejected" && String(ofA.reason)).toMatch(
      /2 free small servers needed, 0 available/,
    );
  });

  it("leaves no lock behind a VLAN reservation that waited and found the pool exhausted", async () => {
    // allocation-race, full run: three VLAN reservations deadlocked. A reservation that waits
    // for a VLAN another transaction is taking locks that row once it is taken; the row no
    // longer matches, and PostgreSQL keeps the lock anyway, to the end of the transaction. The
    // reservation went on (to its prefix, or to the next round) holding a VLAN it did not get,
    // and another reservation that waited for it could be waited on in turn.
    const dc = "regression-dc4";
    const pool = "regression-np4";
    await seed(dc, { network: pool, vlanRanges: [{ first: 100, last: 100 }], prefixes: [] });
    const others = await t.connect(2);
    const reserve = (q: Tx) =>
      store.reserveVlan(q, { networkPool: pool, owner: { kind: "network", id: newId() } });

    // The first network takes the pool's one VLAN and has not committed yet.
    const first = await holdOpen(others, reserve);
    // The second waits for it, hears "exhausted" once the first commits, and its transaction
    // goes on (a reconciler writes the resource's Stalled condition in it).
    const pending = holdOpen(t.db, (q) => reserve(q).catch((err: unknown) => err));
    await waitingForLocks(1);
    await first.end();
    const second = await pending;
    expect(second.result).toBeInstanceOf(PoolExhaustedError);

    // While the second's transaction is still open, the first network's VLAN is not locked:
    // releasing it (its network deleted) does not wait for the failed reservation.
    try {
      const probe = await inTransaction(others, async (q) => {
        await actAs(q, ContextRole.inventory);
        return q
          .execute(
            sql`SELECT vlan_id FROM inventory.vlans WHERE network_pool = ${pool} FOR UPDATE NOWAIT`,
          )
          .then(() => "free to lock")
          .catch((err: unknown) => `${sqlStateOf(err)}: ${String(err)}`);
      });
      expect(probe).toBe("free to lock");
    } finally {
      await second.end();
    }
  });
});
