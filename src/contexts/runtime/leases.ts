import { and, asc, eq, gt, isNull, lte, or, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import { leaseMembers, leases } from "./schema.js";

/** A shard lease as granted: the fencing token identifies the grant. */
export interface Grant {
  readonly shard: number;
  readonly token: number;
}

/**
 * Thrown when a write carries a fencing token that is no longer the shard's current grant (or
 * whose lease expired): another replica owns the shard now, or may. The write is refused.
 */
export class FencedError extends Error {
  override readonly name = "FencedError";
  readonly code = "DV_FENCED";
  readonly shard: number;
  readonly token: number;

  constructor(shard: number, token: number) {
    super(`shard ${shard}: fencing token ${token} is stale; another replica owns the shard`);
    this.shard = shard;
    this.token = token;
  }
}

/**
 * Shard leases in PostgreSQL, timed by the database's clock (never a replica's). Every grant
 * increments the shard's fencing token; {@link checkFence} refuses a writer whose token is not the
 * current one and holds the lease row shared until its transaction ends, so a takeover waits for
 * writes in flight and no write lands after one.
 */
export class LeaseStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** Makes sure rows exist for shards 0…count-1. */
  ensureShards(count: number): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q.execute(
          sql`INSERT INTO ${leases} (shard) SELECT s FROM generate_series(0, ${count - 1}::int) AS s ON CONFLICT DO NOTHING`,
        );
      }),
    );
  }

  /** Takes a free or expired shard; returns the new grant, or nothing if it is taken. */
  acquire(shard: number, holder: string, ttlMs: number): Promise<Grant | undefined> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const [row] = await q
          .update(leases)
          .set({
            holder,
            fencingToken: sql`${leases.fencingToken} + 1`,
            // clock_timestamp(): the moment the row lock was obtained, after any fenced write in
            // flight committed — so every write of the previous holder is earlier than this.
            acquiredAt: sql`clock_timestamp()`,
            renewedAt: sql`now()`,
            expiresAt: sql`now() + make_interval(secs => ${ttlMs / 1000})`,
          })
          .where(
            and(
              eq(leases.shard, shard),
              or(isNull(leases.holder), lte(leases.expiresAt, sql`now()`)),
            ),
          )
          .returning({ token: leases.fencingToken });
        return row ? { shard, token: row.token } : undefined;
      }),
    );
  }

  /** Extends a grant that has not expired; false when it was lost (expired or taken over). */
  renew(grant: Grant, holder: string, ttlMs: number): Promise<boolean> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const rows = await q
          .update(leases)
          .set({
            renewedAt: sql`now()`,
            expiresAt: sql`now() + make_interval(secs => ${ttlMs / 1000})`,
          })
          .where(
            and(
              eq(leases.shard, grant.shard),
              eq(leases.holder, holder),
              eq(leases.fencingToken, grant.token),
              gt(leases.expiresAt, sql`now()`),
            ),
          )
          .returning({ shard: leases.shard });
        return rows.length === 1;
      }),
    );
  }

  /** Gives a grant back at once (on shutdown or rebalancing). */
  release(grant: Grant, holder: string): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q
          .update(leases)
          .set({ holder: null, expiresAt: sql`now()` })
          .where(
            and(
              eq(leases.shard, grant.shard),
              eq(leases.holder, holder),
              eq(leases.fencingToken, grant.token),
            ),
          );
      }),
    );
  }

  /** Records that `holder` is alive until now + ttl, and lists the live replicas. */
  heartbeat(holder: string, datacenterId: string, ttlMs: number): Promise<string[]> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q
          .insert(leaseMembers)
          .values({
            holder,
            datacenterId,
            expiresAt: sql`now() + make_interval(secs => ${ttlMs / 1000})`,
          })
          .onConflictDoUpdate({
            target: leaseMembers.holder,
            set: { expiresAt: sql`now() + make_interval(secs => ${ttlMs / 1000})` },
          });
        await q
          .delete(leaseMembers)
          .where(lte(leaseMembers.expiresAt, sql`now() - interval '1 hour'`));
        const rows = await q
          .select({ holder: leaseMembers.holder })
          .from(leaseMembers)
          .where(gt(leaseMembers.expiresAt, sql`now()`));
        return rows.map((r) => r.holder);
      }),
    );
  }

  /** Leaves the membership (on shutdown). */
  leave(holder: string): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q.delete(leaseMembers).where(eq(leaseMembers.holder, holder));
      }),
    );
  }

  /** Every shard with its holder and whether the lease is live. */
  list(): Promise<
    { shard: number; holder: string | null; token: number; expiresAt: Date | null; live: boolean }[]
  > {
    return this.reading(undefined, (q) =>
      q
        .select({
          shard: leases.shard,
          holder: leases.holder,
          token: leases.fencingToken,
          expiresAt: leases.expiresAt,
          live: sql<boolean>`coalesce(${leases.expiresAt} > now(), false)`,
        })
        .from(leases)
        .orderBy(asc(leases.shard)),
    );
  }

  /**
   * Refuses the rest of `tx` unless `grant` is the shard's current, unexpired grant of `holder`;
   * locks the lease row shared until the transaction ends so no takeover can commit meanwhile.
   * Call it first in every transaction a reconciler writes with.
   *
   * @throws {FencedError}
   */
  checkFence(tx: Tx, grant: Grant, holder: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      // The fence is also left in the transaction's settings (`dv.fence`), where audit triggers
      // and tests can see which grant a write was made under.
      const rows = await q
        .select({
          shard: leases.shard,
          fence: sql`set_config('dv.fence', ${`${holder}/${grant.shard}/${grant.token}`}, true)`,
        })
        .from(leases)
        .where(
          and(
            eq(leases.shard, grant.shard),
            eq(leases.holder, holder),
            eq(leases.fencingToken, grant.token),
            gt(leases.expiresAt, sql`now()`),
          ),
        )
        .for("share");
      if (rows.length !== 1) throw new FencedError(grant.shard, grant.token);
    });
  }
}
