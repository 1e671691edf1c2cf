// A model of the shard leases (LeaseStore) for `fc.commands`: three shards, three replicas, a
// lease duration (60 s) no run comes near, and the passing of time as an explicit command that
// moves one lease's expiry into the past on the database's clock — the only clock leases are
// timed by — so no run waits. The model says, from docs/reconciling.md ("Shards and leases",
// "Fencing"), who holds each shard, its fencing token and which grant a write may be made under.
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { expect } from "vitest";
import type { TestDatabase } from "../../../test/support/database.js";
import { FencedError, type Grant, type LeaseStore } from "../../../src/contexts/runtime/index.js";
import { inTransaction } from "../../../src/db/index.js";
import { ModelCommand, refusal, type Tally } from "./run.js";

const SHARDS = 3;
const HOLDERS = ["a", "b", "c"] as const;
type Holder = (typeof HOLDERS)[number];
const TTL_MS = 60_000;

/** Which token a replica presents: the shard's current one, the one before, or one never granted. */
const WHICH = ["current", "stale", "future"] as const;
type Which = (typeof WHICH)[number];

interface ShardModel {
  /** The token of the latest grant (0: never granted). */
  token: number;
  /** The holder of the latest grant until it is released (an expired lease keeps its holder). */
  holder: Holder | null;
  /** Whether the latest grant is unexpired. */
  live: boolean;
  /** Every grant of the shard in this run, oldest first. */
  readonly grants: { token: number; holder: Holder }[];
}

/** The model: one entry per shard. */
export interface LeaseModel {
  readonly shards: ShardModel[];
}

/** The real lease store. */
export interface LeaseReal {
  readonly tally: Tally;
  readonly t: TestDatabase;
  readonly store: LeaseStore;
}

const tokenOf = (shard: ShardModel, which: Which): number =>
  which === "current" ? shard.token : which === "stale" ? shard.token - 1 : shard.token + 1;

/** Whether a write under this grant must be accepted: the current, unexpired grant of its holder. */
const valid = (shard: ShardModel, token: number, holder: Holder): boolean =>
  shard.live && shard.holder === holder && shard.token === token && token > 0;

const shardOf = (m: LeaseModel, shard: number): ShardModel => m.shards[shard]!;

/** What operators see (`dv leases`, `LeaseStore.list`): holder, token and liveness per shard. */
async function expectListMatches(m: LeaseModel, r: LeaseReal): Promise<void> {
  const rows = await r.store.list();
  expect(rows.map(({ shard, holder, token, live }) => ({ shard, holder, token, live }))).toEqual(
    m.shards.map((s, shard) => ({ shard, holder: s.holder, token: s.token, live: s.live })),
  );
}

abstract class LeaseCommand extends ModelCommand<LeaseModel, LeaseReal> {
  override async run(m: LeaseModel, r: LeaseReal): Promise<void> {
    await super.run(m, r);
    await expectListMatches(m, r);
  }
}

/** Take a shard: granted, with the next token, only when it is free or expired. */
class Acquire extends LeaseCommand {
  constructor(
    readonly shard: number,
    readonly holder: Holder,
  ) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const s = shardOf(m, this.shard);
    const got = await r.store.acquire(this.shard, this.holder, TTL_MS);
    if (s.holder !== null && s.live) {
      expect(got).toBeUndefined();
      r.tally.refused += 1;
      return;
    }
    expect(got).toEqual({ shard: this.shard, token: s.token + 1 });
    s.token += 1;
    s.holder = this.holder;
    s.live = true;
    s.grants.push({ token: s.token, holder: this.holder });
  }

  toString(): string {
    return `acquire(shard ${this.shard}, ${this.holder})`;
  }
}

/**
 * Two replicas take the same shard at once: if it is free or expired exactly one gets the next
 * token, the other nothing; otherwise both get nothing. (The second waits for the first one's
 * row lock; it is given time enough here, so a slow machine cannot make both give up.)
 */
class RaceAcquire extends LeaseCommand {
  constructor(
    readonly shard: number,
    readonly holders: readonly [Holder, Holder],
  ) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const s = shardOf(m, this.shard);
    const got = await Promise.all(
      this.holders.map((h) => r.store.acquire(this.shard, h, TTL_MS, 10_000)),
    );
    if (s.holder !== null && s.live) {
      expect(got).toEqual([undefined, undefined]);
      r.tally.refused += 2;
      return;
    }
    const winners = [0, 1].filter((i) => got[i] !== undefined);
    expect(winners, `both or neither got shard ${this.shard}: ${JSON.stringify(got)}`).toHaveLength(
      1,
    );
    const winner = winners[0]!;
    expect(got[winner]).toEqual({ shard: this.shard, token: s.token + 1 });
    r.tally.refused += 1;
    s.token += 1;
    s.holder = this.holders[winner]!;
    s.live = true;
    s.grants.push({ token: s.token, holder: s.holder });
  }

  toString(): string {
    return `race(acquire(shard ${this.shard}, ${this.holders[0]}) ∥ acquire(shard ${this.shard}, ${this.holders[1]}))`;
  }
}

/** Renew some grants at once: exactly the live, current grants of the caller are renewed. */
class Renew extends LeaseCommand {
  constructor(
    readonly holder: Holder,
    readonly grants: readonly (readonly [number, Which])[],
  ) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const grants: Grant[] = this.grants.map(([shard, which]) => ({
      shard,
      token: tokenOf(shardOf(m, shard), which),
    }));
    const renewed = await r.store.renew(grants, this.holder, TTL_MS);
    expect([...renewed].sort()).toEqual(
      [
        ...new Set(
          grants
            .filter((g) => valid(shardOf(m, g.shard), g.token, this.holder))
            .map((g) => g.shard),
        ),
      ].sort(),
    );
  }

  toString(): string {
    return `renew(${this.holder}, [${this.grants.map(([s, w]) => `shard ${s} ${w}`).join(", ")}])`;
  }
}

/** Give a grant back: frees the shard only if holder and token still match (expired or not). */
class Release extends LeaseCommand {
  constructor(
    readonly shard: number,
    readonly holder: Holder,
    readonly which: Which,
  ) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const s = shardOf(m, this.shard);
    const token = tokenOf(s, this.which);
    await r.store.release({ shard: this.shard, token }, this.holder);
    if (s.holder === this.holder && s.token === token) {
      s.holder = null;
      s.live = false;
    }
  }

  toString(): string {
    return `release(shard ${this.shard} ${this.which}, ${this.holder})`;
  }
}

/**
 * A fenced write: accepted only under the shard's current, unexpired grant of its holder (and the
 * grant is then named in the transaction's `dv.fence`), refused with `FencedError` otherwise.
 */
class Fence extends LeaseCommand {
  constructor(
    readonly shard: number,
    readonly holder: Holder,
    readonly which: Which,
  ) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const s = shardOf(m, this.shard);
    const grant = { shard: this.shard, token: tokenOf(s, this.which) };
    const writing = inTransaction(r.t.db, async (tx) => {
      await r.store.checkFence(tx, grant, this.holder);
      const result = await tx.execute(sql`SELECT current_setting('dv.fence', true) AS fence`);
      return (result as { rows: { fence: string | null }[] }).rows[0]?.fence;
    });
    if (valid(s, grant.token, this.holder)) {
      expect(await writing).toBe(`${this.holder}/${grant.shard}/${grant.token}`);
    } else {
      const err = await refusal(r.tally, writing);
      expect(err).toBeInstanceOf(FencedError);
      expect(err).toMatchObject({ shard: grant.shard, token: grant.token, code: "DV_FENCED" });
    }
  }

  toString(): string {
    return `checkFence(shard ${this.shard} ${this.which}, ${this.holder})`;
  }
}

/**
 * Every grant the shard ever had, each presented by its holder: at most one passes the fence,
 * and it is the latest, if that one is live. (Two replicas that both believe they own a shard can
 * never both write.)
 */
class FenceEveryGrant extends LeaseCommand {
  constructor(readonly shard: number) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    const s = shardOf(m, this.shard);
    const accepted: number[] = [];
    for (const grant of s.grants) {
      try {
        await inTransaction(r.t.db, (tx) =>
          r.store.checkFence(tx, { shard: this.shard, token: grant.token }, grant.holder),
        );
        accepted.push(grant.token);
      } catch (err) {
        if (!(err instanceof FencedError)) throw err;
      }
    }
    expect(accepted).toEqual(s.live && s.holder !== null ? [s.token] : []);
  }

  toString(): string {
    return `checkFence(every grant of shard ${this.shard})`;
  }
}

/** The lease duration passes for one shard: its expiry moves into the past on the database clock. */
class Expire extends LeaseCommand {
  constructor(readonly shard: number) {
    super();
  }

  protected async apply(m: LeaseModel, r: LeaseReal): Promise<void> {
    await r.t.admin.query(
      "UPDATE runtime.leases SET expires_at = now() - interval '1 second' WHERE shard = $1 AND expires_at > now()",
      [this.shard],
    );
    shardOf(m, this.shard).live = false;
  }

  toString(): string {
    return `expire(shard ${this.shard})`;
  }
}

const shard = fc.nat(SHARDS - 1);
const holder = fc.constantFrom(...HOLDERS);
const which = fc.constantFrom(...WHICH);

/** The commands of the lease model. */
export const leaseCommands: fc.Arbitrary<fc.AsyncCommand<LeaseModel, LeaseReal>>[] = [
  fc.tuple(shard, holder).map(([s, h]) => new Acquire(s, h)),
  fc
    .tuple(shard, fc.uniqueArray(holder, { minLength: 2, maxLength: 2 }))
    .map(([s, [a = "a", b = "b"]]) => new RaceAcquire(s, [a, b])),
  fc
    .tuple(holder, fc.array(fc.tuple(shard, which), { maxLength: 4 }))
    .map(([h, grants]) => new Renew(h, grants)),
  fc.tuple(shard, holder, which).map(([s, h, w]) => new Release(s, h, w)),
  fc.tuple(shard, holder, which).map(([s, h, w]) => new Fence(s, h, w)),
  shard.map((s) => new FenceEveryGrant(s)),
  shard.map((s) => new Expire(s)),
];

/** Fresh lease rows for shards 0…2 (never granted), and a model of them. */
export async function leaseSetup(
  t: TestDatabase,
  store: LeaseStore,
  tally: Tally,
): Promise<{ model: LeaseModel; real: LeaseReal }> {
  await t.admin.query("DELETE FROM runtime.leases");
  await store.ensureShards(SHARDS);
  return {
    model: {
      shards: Array.from({ length: SHARDS }, () => ({
        token: 0,
        holder: null,
        live: false,
        grants: [],
      })),
    },
    real: { tally, t, store },
  };
}
