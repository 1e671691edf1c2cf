import { and, asc, eq, gt, gte, isNull, lte, or, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  SqlState,
  rowsOf,
  sqlStateOf,
  type Tx,
} from "../../db/index.js";
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
 * current one and holds the lease row FOR KEY SHARE until its transaction ends, so a takeover
 * (which locks the row FOR UPDATE) waits for writes in flight and no write lands after one.
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

  /** Makes sure the row of one lease outside the shard range exists (the platform controller's). */
  ensureShard(shard: number): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q.insert(leases).values({ shard }).onConflictDoNothing();
      }),
    );
  }

  /**
   * Takes a free or expired shard; returns the new grant, or nothing if it is taken — or if a
   * write of the previous holder is still in flight after `lockWaitMs` (a paused process can
   * hold one open for long): the caller tries again on its next round rather than wait.
   */
  async acquire(
    shard: number,
    holder: string,
    ttlMs: number,
    lockWaitMs = 250,
  ): Promise<Grant | undefined> {
    try {
      return await this.#acquire(shard, holder, ttlMs, lockWaitMs);
    } catch (err) {
      if (sqlStateOf(err) === SqlState.LockNotAvailable) return undefined;
      throw err;
    }
  }

  #acquire(
    shard: number,
    holder: string,
    ttlMs: number,
    lockWaitMs: number,
  ): Promise<Grant | undefined> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q.execute(sql.raw(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockWaitMs))}`));
        // FOR UPDATE waits for every fenced write in flight on the shard (they hold the row
        // FOR KEY SHARE); a plain UPDATE would not, as it only needs FOR NO KEY UPDATE.
        await q
          .select({ shard: leases.shard })
          .from(leases)
          .where(eq(leases.shard, shard))
          .for("update");
        const [row] = await q
          .update(leases)
          .set({
            holder,
            fencingToken: sql`${leases.fencingToken} + 1`,
            // The holder's datacenter, as its heartbeat (which comes first in a round) named it.
            datacenterId: sql`(SELECT ${leaseMembers.datacenterId} FROM ${leaseMembers} WHERE ${leaseMembers.holder} = ${holder})`,
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

  /**
   * Extends the grants of `holder` that have not expired, in one statement; returns the shards
   * renewed (a grant missing from the answer was lost: expired or taken over). Renewal does not
   * wait for fenced writes in flight: they hold the row FOR KEY SHARE, which an update of
   * non-key columns does not conflict with.
   */
  renew(grants: readonly Grant[], holder: string, ttlMs: number): Promise<Set<number>> {
    if (grants.length === 0) return Promise.resolve(new Set());
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
              eq(leases.holder, holder),
              gt(leases.expiresAt, sql`now()`),
              or(
                ...grants.map((g) =>
                  and(eq(leases.shard, g.shard), eq(leases.fencingToken, g.token)),
                ),
              ),
            ),
          )
          .returning({ shard: leases.shard });
        return new Set(rows.map((r) => r.shard));
      }),
    );
  }

  /** Gives a grant back at once (on shutdown or rebalancing). */
  release(grant: Grant, holder: string): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q
          .update(leases)
          .set({ holder: null, datacenterId: null, expiresAt: sql`now()` })
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

  /**
   * Every tenant shard (0 and up) with its holder and whether the lease is live; the platform
   * controller's lease (below 0) is not a shard and is left out.
   */
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
        .where(gte(leases.shard, 0))
        .orderBy(asc(leases.shard)),
    );
  }

  /**
   * For operators: every lease row (tenant shards and the platform controllers' leader lease)
   * and every replica that announced itself, with ages from the database's clock.
   */
  async overview(): Promise<{
    leases: {
      shard: number;
      holder: string | null;
      token: number;
      live: boolean;
      expiresInMs: number | null;
      acquiredAt: Date | null;
    }[];
    members: { holder: string; datacenterId: string; live: boolean }[];
  }> {
    return this.reading(undefined, async (q) => {
      const rows = await q
        .select({
          shard: leases.shard,
          holder: leases.holder,
          token: leases.fencingToken,
          live: sql<boolean>`coalesce(${leases.expiresAt} > now(), false)`,
          expiresInMs: sql<
            number | null
          >`(extract(epoch from (${leases.expiresAt} - now())) * 1000)::float8`,
          acquiredAt: leases.acquiredAt,
        })
        .from(leases)
        .orderBy(asc(leases.shard));
      const members = await q
        .select({
          holder: leaseMembers.holder,
          datacenterId: leaseMembers.datacenterId,
          live: sql<boolean>`${leaseMembers.expiresAt} > now()`,
        })
        .from(leaseMembers)
        .orderBy(asc(leaseMembers.holder));
      return {
        leases: rows.map((r) => ({
          ...r,
          expiresInMs: r.expiresInMs === null ? null : Math.round(Number(r.expiresInMs)),
        })),
        members,
      };
    });
  }

  /**
   * Refuses the rest of `tx` unless `grant` is the shard's current, unexpired grant of `holder`;
   * locks the lease row (FOR KEY SHARE) until the transaction ends, so no takeover can commit
   * meanwhile while renewals of the holder go on unhindered.
   * Call it first in every transaction a reconciler writes with.
   *
   * @throws {FencedError}
   */
  /**
   * The fence of a transaction that writes for keys of several shards: which of `grants` are
   * still `holder`'s, unexpired — those rows are locked (`FOR KEY SHARE`) until the transaction
   * ends, so no takeover can commit before its writes do. Writes for keys of the other shards must
   * not be made. One statement. The grants that hold are left in `dv.fence`
   * (`holder/shard/token,…`) and the shard count in `dv.shards`, for audit triggers and tests.
   */
  holdFences(
    tx: Tx,
    grants: readonly Grant[],
    holder: string,
    shardCount: number,
  ): Promise<Set<number>> {
    if (grants.length === 0) return Promise.resolve(new Set());
    const wanted = JSON.stringify(grants.map((g) => ({ shard: g.shard, token: g.token })));
    return this.inTx(tx, async (q) => {
      const result = await q.execute(sql`
        WITH held AS (
          SELECT l.shard, l.fencing_token FROM ${leases} l
            JOIN jsonb_to_recordset(${wanted}::jsonb) AS g(shard int, token bigint)
              ON l.shard = g.shard AND l.fencing_token = g.token
           WHERE l.holder = ${holder} AND l.expires_at > now()
           ORDER BY l.shard
             FOR KEY SHARE OF l
        )
        SELECT held.shard,
               set_config('dv.fence', (SELECT string_agg(${holder} || '/' || h.shard || '/' || h.fencing_token, ',') FROM held h), true) AS fence,
               set_config('dv.shards', ${String(shardCount)}, true) AS shards
          FROM held`);
      return new Set(rowsOf<{ shard: number }>(result).map((r) => Number(r.shard)));
    });
  }

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
        .for("key share");
      if (rows.length !== 1) throw new FencedError(grant.shard, grant.token);
    });
  }
}
