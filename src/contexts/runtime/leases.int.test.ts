// LeaseStore against a real PostgreSQL: the lease port contract the lease manager relies on, and
// the fencing guarantees — a stale writer is refused, a takeover waits for the writes in flight
// of the holder it replaces, and renewals never wait for them.
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { leasePortContract } from "../../../test/support/lease-contract.js";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { inTransaction } from "../../db/index.js";
import { FencedError, LeaseStore } from "./index.js";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

leasePortContract("LeaseStore on PostgreSQL", async () => ({
  port: new LeaseStore(t.db),
  pass: (ms) => sleep(ms),
  close: async () => {},
}));

/** Settles to "pending" if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  return Promise.race([promise, sleep(ms).then(() => "pending" as const)]);
}

describe("fencing", () => {
  const TTL = 400;

  it("refuses a write under a token that is stale, expired or someone else's", async () => {
    const store = new LeaseStore(t.db);
    await store.ensureShards(16);
    const grant = (await store.acquire(10, "a", TTL))!;
    await inTransaction(t.db, (tx) => store.checkFence(tx, grant, "a"));
    await expect(inTransaction(t.db, (tx) => store.checkFence(tx, grant, "b"))).rejects.toThrow(
      FencedError,
    );
    await sleep(TTL + 100);
    await expect(inTransaction(t.db, (tx) => store.checkFence(tx, grant, "a"))).rejects.toThrow(
      new FencedError(10, grant.token),
    );
    const successor = (await store.acquire(10, "b", TTL))!;
    await inTransaction(t.db, (tx) => store.checkFence(tx, successor, "b"));
    await expect(inTransaction(t.db, (tx) => store.checkFence(tx, grant, "a"))).rejects.toThrow(
      FencedError,
    );
  });

  it("makes a takeover wait until the old holder's write in flight has committed", async () => {
    const store = new LeaseStore(t.db);
    await store.ensureShards(16);
    const old = (await store.acquire(11, "a", TTL))!;
    let finish = (): void => undefined;
    const writing = new Promise<void>((resolve) => (finish = resolve));
    let committedAt = 0;
    const write = inTransaction(t.db, async (tx) => {
      await store.checkFence(tx, old, "a");
      await writing;
    }).then(() => (committedAt = performance.now()));
    await sleep(50);
    // The lease expires while the write is still open; the takeover has to wait for it.
    await sleep(TTL + 100);
    // With the default wait, the takeover gives up for now and leaves the lease alone.
    expect(await store.acquire(11, "b", TTL)).toBeUndefined();
    expect((await store.list()).find((l) => l.shard === 11)).toMatchObject({ holder: "a" });
    const takeover = store.acquire(11, "b", TTL, 10_000);
    expect(await within(takeover, 500)).toBe("pending");
    finish();
    await write;
    const grant = await takeover;
    expect(grant?.token).toBe(old.token + 1);
    expect(performance.now()).toBeGreaterThanOrEqual(committedAt);
  });

  it("lets the holder renew while its own writes are in flight", async () => {
    const store = new LeaseStore(t.db);
    await store.ensureShards(16);
    const grant = (await store.acquire(12, "a", TTL * 10))!;
    let finish = (): void => undefined;
    const writing = new Promise<void>((resolve) => (finish = resolve));
    const write = inTransaction(t.db, async (tx) => {
      await store.checkFence(tx, grant, "a");
      await writing;
    });
    await sleep(50);
    expect(await within(store.renew([grant], "a", TTL * 10), 2_000)).toEqual(new Set([12]));
    finish();
    await write;
  });
});
