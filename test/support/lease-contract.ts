// The behaviour every implementation of the lease port must have, run against LeaseStore on a
// real PostgreSQL and against the in-memory port the lease manager's unit tests use: if the two
// ever disagree, one of these cases fails for one of them.
import { describe, expect, it } from "vitest";
import type { LeasePort } from "../../src/reconcile/index.js";

/** A port under test, and how to let time pass for it. */
export interface LeasePortSubject {
  readonly port: LeasePort;
  /** Lets `ms` pass on the clock the port keeps time by. */
  readonly pass: (ms: number) => Promise<void>;
  readonly close: () => Promise<void>;
}

const TTL = 400;

/** Registers the contract cases for the port `make` builds (one per case). */
export function leasePortContract(name: string, make: () => Promise<LeasePortSubject>): void {
  const withPort = (fn: (s: LeasePortSubject) => Promise<void>) => async () => {
    const subject = await make();
    try {
      await subject.port.ensureShards(8);
      await fn(subject);
    } finally {
      await subject.close();
    }
  };

  describe(`${name}: the lease port contract`, () => {
    it(
      "grants a free shard, with a fencing token that grows on every grant",
      withPort(async ({ port }) => {
        const first = await port.acquire(0, "a", TTL);
        expect(first).toMatchObject({ shard: 0 });
        expect(await port.acquire(0, "b", TTL)).toBeUndefined();
        await port.release(first!, "a");
        const second = await port.acquire(0, "b", TTL);
        expect(second?.token).toBe(first!.token + 1);
        await port.ensureShards(8);
        expect((await port.list()).find((l) => l.shard === 0)).toMatchObject({
          holder: "b",
          live: true,
        });
      }),
    );

    it(
      "lets another holder take a lease only once it expired",
      withPort(async ({ port, pass }) => {
        const a = await port.acquire(1, "a", TTL);
        await pass(TTL / 2);
        expect(await port.acquire(1, "b", TTL)).toBeUndefined();
        await pass(TTL);
        expect((await port.list()).find((l) => l.shard === 1)?.live).toBe(false);
        const b = await port.acquire(1, "b", TTL);
        expect(b?.token).toBe(a!.token + 1);
        // The old holder's release cannot free the new grant.
        await port.release(a!, "a");
        expect((await port.list()).find((l) => l.shard === 1)).toMatchObject({ holder: "b" });
      }),
    );

    it(
      "renews only the live grants of their holder with the current token",
      withPort(async ({ port, pass }) => {
        const g2 = (await port.acquire(2, "a", TTL))!;
        const g3 = (await port.acquire(3, "a", TTL))!;
        expect(await port.renew([g2, g3], "b", TTL)).toEqual(new Set());
        expect(await port.renew([g2, { shard: 3, token: g3.token - 1 }], "a", TTL)).toEqual(
          new Set([2]),
        );
        // Renewed just now, shard 2 outlives shard 3.
        await pass(TTL * 0.75);
        expect(await port.renew([g2, g3], "a", TTL)).toEqual(new Set([2, 3]));
        await pass(TTL + 100);
        expect(await port.renew([g2, g3], "a", TTL)).toEqual(new Set());
        expect(await port.renew([], "a", TTL)).toEqual(new Set());
      }),
    );

    it(
      "lists the live members, and forgets one that leaves or stops beating",
      withPort(async ({ port, pass }) => {
        await port.heartbeat("m1", "dc1", TTL);
        expect((await port.heartbeat("m2", "dc1", TTL)).sort()).toEqual(["m1", "m2"]);
        await port.leave("m1");
        expect(await port.heartbeat("m2", "dc1", TTL)).toEqual(["m2"]);
        await pass(TTL / 2);
        await port.heartbeat("m3", "dc1", TTL);
        await pass(TTL / 2 + 100);
        expect(await port.heartbeat("m3", "dc1", TTL)).toEqual(["m3"]);
      }),
    );
  });
}
