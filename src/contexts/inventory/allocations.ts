import { and, asc, eq, inArray, type SQL, sql } from "drizzle-orm";
import { anyUuid, executeNamed, type Orm, rowsOf, type Tx, withSavepoint } from "../../db/index.js";
import { CapacityExhaustedError, PoolExhaustedError } from "../../kernel/index.js";
import { carve, formatPrefix, parent, parsePrefix, buddy, type Prefix } from "./ipmath.js";
import { capacity, capacityReservations, ipBlocks, ipPools, servers, vlans } from "./schema.js";

import { type Allocations, holdsNothing, type Need, type Owner, type Server } from "./model.js";
import { TopologyStore } from "./topology.js";

/** Thrown inside an attempt's savepoint to roll it back: the attempt took nothing. */
class TookNothing extends Error {}

/**
 * Who holds what of the physical inventory: VLANs, IP prefixes, servers and capacity, reserved
 * by tenant resources and released when they are gone. Reservations are decided by the
 * database: a VLAN id is a primary key per datacenter, IP blocks of a pool cannot overlap
 * (exclusion constraint), a server row has one owner, capacity cannot go below zero (check).
 * Free items are picked with `FOR UPDATE SKIP LOCKED`, so contenders never wait on each other.
 */
export class AllocationStore extends TopologyStore {
  /**
   * Picks free items without waiting on rows other transactions hold (`SKIP LOCKED`); when that
   * finds nothing it waits on the held candidates once (`FOR UPDATE`) and looks again, so a row
   * being split or taken right now is never mistaken for an exhausted pool. Only when no free
   * row exists does the caller hear "exhausted".
   *
   * Each attempt runs in a savepoint, rolled back when it took nothing. A row a statement waited
   * for and found taken when it got it stays locked (PostgreSQL keeps the lock of a row that no
   * longer matched), and so do rows an attempt took when it needed more; the rollback lets go
   * of them. So no reservation waits while it holds rows of the pool it did not get, and two
   * reservations cannot wait on each other (a deadlock).
   */
  async #pick<T>(
    tx: Tx,
    attempt: (q: Orm, lock: SQL, how: "skip" | "wait") => Promise<T | undefined>,
  ): Promise<T | undefined> {
    for (let round = 0; round < 4; round++) {
      for (const how of ["skip", "wait"] as const) {
        const lock = how === "skip" ? sql`FOR UPDATE SKIP LOCKED` : sql`FOR UPDATE`;
        try {
          return await withSavepoint(tx, async (savepoint) => {
            const got = await attempt(savepoint, lock, how);
            if (got === undefined) throw new TookNothing();
            return got;
          });
        } catch (err) {
          if (!(err instanceof TookNothing)) throw err;
        }
      }
    }
    return undefined;
  }

  /**
   * Reserves a free VLAN of the network pool for `owner`, or returns the one it already holds
   * there (so a reconciler may call it on every pass).
   *
   * @throws {PoolExhaustedError} when every VLAN of the pool is taken (or being taken).
   */
  reserveVlan(
    tx: Tx,
    input: { networkPool: string; owner: Owner },
  ): Promise<{ datacenterId: string; vlanId: number }> {
    return this.inTx(tx, async () => {
      // What the owner holds there, else a free one taken: one statement (in a savepoint).
      const row = await this.#pick(tx, async (q, lock, how) => {
        const picked = await executeNamed(
          q,
          `inventory_reserve_vlan_${how}`,
          sql`
          WITH held AS (
            SELECT datacenter_id, vlan_id FROM ${vlans}
             WHERE network_pool = ${input.networkPool} AND owner_id = ${input.owner.id}
          ), picked AS (
            SELECT datacenter_id, vlan_id FROM ${vlans}
            WHERE network_pool = ${input.networkPool} AND owner_id IS NULL
              AND NOT EXISTS (SELECT 1 FROM held)
            ORDER BY vlan_id LIMIT 1
            ${lock}
          ), taken AS (
            UPDATE ${vlans} v SET owner_kind = ${input.owner.kind}, owner_id = ${input.owner.id}, reserved_at = now()
            FROM picked WHERE v.datacenter_id = picked.datacenter_id AND v.vlan_id = picked.vlan_id
            RETURNING v.datacenter_id, v.vlan_id
          )
          SELECT datacenter_id, vlan_id FROM held
          UNION ALL
          SELECT datacenter_id, vlan_id FROM taken`,
        );
        return rowsOf<{ datacenter_id: string; vlan_id: number }>(picked)[0];
      });
      if (!row) throw new PoolExhaustedError("vlan", input.networkPool, "no free VLAN id");
      return { datacenterId: row.datacenter_id, vlanId: row.vlan_id };
    });
  }

  /**
   * Reserves a free prefix of `prefixLength` from the network pool for `owner` (best fit, then
   * lowest address), splitting a larger free block when needed; returns the one the owner
   * already holds there, if any.
   *
   * @throws {PoolExhaustedError} when no free block is large enough.
   */
  reservePrefix(
    tx: Tx,
    input: { networkPool: string; prefixLength: number; family?: 4 | 6; owner: Owner },
  ): Promise<{ prefix: string; datacenterId: string }> {
    const family = input.family ?? 4;
    return this.inTx(tx, async (q) => {
      // What the owner holds there (of that length), else a free block to carve: one statement.
      const block = await this.#pick(tx, async (q, lock, how) => {
        // Ordered by the cidr column, not by the text selected under the same name: by address
        // ("10.0.0.8" before "10.0.0.40").
        const picked = await executeNamed(
          q,
          `inventory_reserve_prefix_${how}`,
          sql`
          WITH held AS (
            SELECT prefix::text AS prefix, datacenter_id FROM ${ipBlocks}
             WHERE network_pool = ${input.networkPool} AND owner_id = ${input.owner.id}
               AND prefix_length = ${input.prefixLength}
          ), picked AS (
            SELECT id, pool_id, datacenter_id, prefix::text AS prefix FROM ${ipBlocks}
            WHERE network_pool = ${input.networkPool} AND owner_id IS NULL
              AND prefix_length <= ${input.prefixLength} AND family(prefix) = ${family}
              AND NOT EXISTS (SELECT 1 FROM held)
            ORDER BY prefix_length DESC, ip_blocks.prefix
            LIMIT 1
            ${lock}
          )
          SELECT true AS held, NULL::uuid AS id, NULL::uuid AS pool_id, datacenter_id, prefix FROM held
          UNION ALL
          SELECT false, id, pool_id, datacenter_id, prefix FROM picked`,
        );
        return rowsOf<{
          held: boolean;
          id: string;
          pool_id: string;
          datacenter_id: string;
          prefix: string;
        }>(picked)[0];
      });
      if (block?.held) return { prefix: block.prefix, datacenterId: block.datacenter_id };
      if (!block) {
        throw new PoolExhaustedError(
          "prefix",
          input.networkPool,
          `no free IPv${family} block of /${input.prefixLength} or larger`,
        );
      }
      const { allocated, remainders } = carve(parsePrefix(block.prefix), input.prefixLength);
      const owner = {
        ownerKind: input.owner.kind,
        ownerId: input.owner.id,
        reservedAt: sql`now()`,
      };
      if (remainders.length === 0) {
        await q.update(ipBlocks).set(owner).where(eq(ipBlocks.id, block.id));
      } else {
        await q.delete(ipBlocks).where(eq(ipBlocks.id, block.id));
        const base = {
          poolId: block.pool_id,
          networkPool: input.networkPool,
          datacenterId: block.datacenter_id,
        };
        await q
          .insert(ipBlocks)
          .values([
            { id: this.newId(), ...base, prefix: formatPrefix(allocated), ...owner },
            ...remainders.map((r) => ({ id: this.newId(), ...base, prefix: formatPrefix(r) })),
          ]);
      }
      return { prefix: formatPrefix(allocated), datacenterId: block.datacenter_id };
    });
  }

  /**
   * Reserves what `needs` ask for — VLANs and prefixes of network pools, for many owners — as
   * {@link reserveVlan} and {@link reservePrefix} one by one would (the lowest free VLAN; the best
   * fitting free block, then the lowest address, carved), in a few statements per pool whatever
   * the number of owners: one for the VLANs of a pool, and for the prefixes of a pool and length
   * one to lock the blocks to carve and one each to delete, insert and assign. Blocks and VLANs
   * another transaction holds are skipped, not waited for. An owner is given all it needs or
   * nothing: one whose need a pool cannot meet now keeps nothing of this call (two statements
   * more), and its own reservation asks again and says why. Owners that already hold one are
   * given nothing more.
   */
  reserveMany(tx: Tx, needs: readonly Need[]): Promise<void> {
    if (needs.length === 0) return Promise.resolve();
    const groups = new Map<string, { owners: Map<string, Owner>; prefixLength?: number }>();
    for (const need of needs) {
      const key =
        need.kind === "vlan"
          ? `vlan\u0000${need.networkPool}`
          : `prefix\u0000${need.networkPool}\u0000${need.prefixLength}`;
      const group = groups.get(key) ?? {
        owners: new Map<string, Owner>(),
        ...(need.kind === "prefix" ? { prefixLength: need.prefixLength } : {}),
      };
      group.owners.set(need.owner.id, need.owner);
      groups.set(key, group);
    }
    return this.inTx(tx, async (q) => {
      // The pools at once: their statements go out together on the transaction's connection
      // (pipelined, answered in order), so a batch of networks in five datacenters waits for
      // the longest pool's statements, not for all of them one after the other. They cannot wait
      // for each other: each pool's rows are its own, and every lock is taken SKIP LOCKED.
      const missed = await Promise.all(
        [...groups].map(([key, group]) => {
          const [kind, networkPool = ""] = key.split("\u0000");
          const owners = [...group.owners.values()];
          return kind === "vlan"
            ? this.#reserveVlans(q, networkPool, owners)
            : this.#reservePrefixes(q, networkPool, group.prefixLength ?? 32, owners);
        }),
      );
      const unmet = new Set(missed.flat());
      if (unmet.size === 0) return;
      // All of an owner's needs or none: what this call gave an owner it could not serve in full
      // goes back (reserved_at is the transaction's start, so only this transaction's rows match).
      const ids = [...unmet];
      await q
        .update(vlans)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(and(inArray(vlans.ownerId, ids), sql`${vlans.reservedAt} = now()`));
      await q
        .update(ipBlocks)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(and(inArray(ipBlocks.ownerId, ids), sql`${ipBlocks.reservedAt} = now()`));
    });
  }

  /**
   * The lowest free VLANs of a pool, one per owner that holds none there: one statement. Returns
   * the owners left without one. Who holds one already is looked up by the owners' ids (an
   * array, on `vlans_owner`): as an anti-join with the JSON rows, which the planner takes for 100
   * whatever they are, it scanned every VLAN of every pool (3.3 of 4.6 ms at 19,500 VLANs).
   */
  async #reserveVlans(q: Orm, networkPool: string, owners: readonly Owner[]): Promise<string[]> {
    const wanted = JSON.stringify(owners.map((o, n) => ({ kind: o.kind, id: o.id, n })));
    const missed = await executeNamed(
      q,
      "inventory_reserve_vlans",
      sql`
      WITH held AS (
        SELECT owner_id FROM ${vlans}
         WHERE owner_id = ${anyUuid(owners.map((o) => o.id))}
           AND network_pool = ${networkPool}
      ), want AS (
        SELECT w.kind, w.id, row_number() OVER (ORDER BY w.n) AS n
          FROM jsonb_to_recordset(${wanted}::jsonb) AS w(kind text, id uuid, n int)
         WHERE w.id NOT IN (SELECT owner_id FROM held)
      ), free AS (
        SELECT f.datacenter_id, f.vlan_id, row_number() OVER (ORDER BY f.vlan_id) AS n
          FROM (SELECT datacenter_id, vlan_id FROM ${vlans}
                 WHERE network_pool = ${networkPool} AND owner_id IS NULL
                 ORDER BY vlan_id LIMIT ${owners.length}
                 FOR UPDATE SKIP LOCKED) AS f
      ), taken AS (
        UPDATE ${vlans} v SET owner_kind = want.kind, owner_id = want.id, reserved_at = now()
          FROM free JOIN want ON want.n = free.n
         WHERE v.datacenter_id = free.datacenter_id AND v.vlan_id = free.vlan_id
        RETURNING v.owner_id
      )
      SELECT want.id::text AS id FROM want WHERE want.id NOT IN (SELECT owner_id FROM taken)`,
    );
    return rowsOf<{ id: string }>(missed).map((r) => r.id);
  }

  /**
   * Prefixes of one length from a pool, one per owner that holds none of that length there: the
   * best fitting free blocks are locked together, carved here (what is left of a block is free
   * for the next owner, as it would be one reservation after the other), and the result written
   * in three statements.
   */
  async #reservePrefixes(
    q: Orm,
    networkPool: string,
    prefixLength: number,
    owners: readonly Owner[],
  ): Promise<string[]> {
    const holders = new Set(
      (
        await q
          .select({ ownerId: ipBlocks.ownerId })
          .from(ipBlocks)
          .where(
            and(
              eq(ipBlocks.networkPool, networkPool),
              eq(ipBlocks.prefixLength, prefixLength),
              inArray(
                ipBlocks.ownerId,
                owners.map((o) => o.id),
              ),
            ),
          )
      ).map((r) => r.ownerId),
    );
    const takers = owners.filter((o) => !holders.has(o.id));
    if (takers.length === 0) return [];
    const candidates = rowsOf<{
      id: string;
      pool_id: string;
      datacenter_id: string;
      prefix: string;
    }>(
      await executeNamed(
        q,
        "inventory_lock_free_blocks",
        sql`
        SELECT id, pool_id, datacenter_id, prefix::text AS prefix FROM ${ipBlocks}
         WHERE network_pool = ${networkPool} AND owner_id IS NULL
           AND prefix_length <= ${prefixLength} AND family(prefix) = 4
         ORDER BY prefix_length DESC, ip_blocks.prefix
         LIMIT ${takers.length}
         FOR UPDATE SKIP LOCKED`,
      ),
    );
    // The free blocks as one reservation after the other would see them: those locked, and what
    // carving them leaves. `row` is the block's id when it is a row already.
    interface Free {
      readonly prefix: Prefix;
      readonly poolId: string;
      readonly datacenterId: string;
      readonly row?: string;
    }
    const free: Free[] = candidates.map((c) => ({
      prefix: parsePrefix(c.prefix),
      poolId: c.pool_id,
      datacenterId: c.datacenter_id,
      row: c.id,
    }));
    const gone: string[] = [];
    const assigned: { id: string; owner: Owner }[] = [];
    const inserts: (Free & { owner?: Owner })[] = [];
    const missed: string[] = [];
    for (const owner of takers) {
      // Best fit (the longest prefix), then the lowest address.
      free.sort(
        (a, b) =>
          b.prefix.length - a.prefix.length ||
          (a.prefix.network < b.prefix.network ? -1 : a.prefix.network > b.prefix.network ? 1 : 0),
      );
      const block = free.shift();
      if (!block) {
        missed.push(owner.id);
        continue;
      }
      if (block.prefix.length === prefixLength) {
        if (block.row) assigned.push({ id: block.row, owner });
        else inserts.push({ ...block, owner });
        continue;
      }
      if (block.row) gone.push(block.row);
      const { allocated, remainders } = carve(block.prefix, prefixLength);
      inserts.push({ ...block, prefix: allocated, owner });
      for (const r of remainders)
        free.push({ prefix: r, poolId: block.poolId, datacenterId: block.datacenterId });
    }
    // What carving left that nobody took stays free, as a row of its own.
    for (const f of free) if (!f.row) inserts.push(f);
    if (gone.length > 0) await q.delete(ipBlocks).where(inArray(ipBlocks.id, gone));
    if (inserts.length > 0)
      await q.insert(ipBlocks).values(
        inserts.map((b) => ({
          id: this.newId(),
          poolId: b.poolId,
          networkPool,
          datacenterId: b.datacenterId,
          prefix: formatPrefix(b.prefix),
          ...(b.owner
            ? { ownerKind: b.owner.kind, ownerId: b.owner.id, reservedAt: sql`now()` }
            : {}),
        })),
      );
    if (assigned.length > 0) {
      const rows = JSON.stringify(
        assigned.map((a) => ({ id: a.id, kind: a.owner.kind, owner: a.owner.id })),
      );
      await q.execute(sql`
        UPDATE ${ipBlocks} b SET owner_kind = r.kind, owner_id = r.owner, reserved_at = now()
          FROM jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, kind text, owner uuid)
         WHERE b.id = r.id AND b.id = ${anyUuid(assigned.map((a) => a.id))}`);
    }
    return missed;
  }

  /**
   * Reserves `count` free servers of a machine class in a datacenter for `owner`, counting the
   * ones it already holds; all or nothing. Returns the owner's servers of that class.
   *
   * @throws {PoolExhaustedError} when fewer free servers are left than needed.
   */
  reserveServers(
    tx: Tx,
    input: {
      datacenterId: string;
      machineClass: string;
      count: number;
      pool?: string;
      owner: Owner;
    },
  ): Promise<Server[]> {
    return this.inTx(tx, async (q) => {
      const held = await q
        .select()
        .from(servers)
        .where(
          and(eq(servers.ownerId, input.owner.id), eq(servers.machineClass, input.machineClass)),
        )
        .orderBy(asc(servers.name));
      const missing = input.count - held.length;
      if (missing <= 0) return held;
      // All or none: an attempt that got fewer than `missing` is rolled back (see #pick), so
      // two calls that each found part of the free servers do not wait for the rest holding it.
      let available = 0;
      const taken = await this.#pick(tx, async (q, lock) => {
        const picked = await q.execute(sql`
          WITH picked AS (
            SELECT id FROM ${servers}
            WHERE datacenter_id = ${input.datacenterId} AND machine_class = ${input.machineClass}
              AND owner_id IS NULL ${input.pool ? sql`AND pool = ${input.pool}` : sql``}
            ORDER BY name LIMIT ${missing}
            ${lock}
          )
          UPDATE ${servers} s SET owner_kind = ${input.owner.kind}, owner_id = ${input.owner.id}, reserved_at = now(),
            version = s.version + 1, updated_at = now()
          FROM picked WHERE s.id = picked.id
          RETURNING s.id`);
        available = rowsOf<{ id: string }>(picked).length;
        return available >= missing ? true : undefined;
      });
      if (!taken) {
        throw new PoolExhaustedError(
          "server",
          input.pool ?? `${input.machineClass} in ${input.datacenterId}`,
          `${missing} free ${input.machineClass} servers needed, ${available} available`,
        );
      }
      // The owner's servers of this class, as a repeated call answers (it may hold others).
      return q
        .select()
        .from(servers)
        .where(
          and(eq(servers.ownerId, input.owner.id), eq(servers.machineClass, input.machineClass)),
        )
        .orderBy(asc(servers.name));
    });
  }

  /**
   * Reserves `amount` of a datacenter's finite capacity for `owner`; a second call for the same
   * owner and resource changes nothing.
   *
   * @throws {CapacityExhaustedError} when less than `amount` is available.
   */
  reserveCapacity(
    tx: Tx,
    input: { datacenterId: string; resource: string; amount: number; owner: Owner },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      const inserted = await q
        .insert(capacityReservations)
        .values({
          ownerKind: input.owner.kind,
          ownerId: input.owner.id,
          datacenterId: input.datacenterId,
          resource: input.resource,
          amount: input.amount,
        })
        .onConflictDoNothing()
        .returning({ amount: capacityReservations.amount });
      if (inserted.length === 0) return;
      // The capacity row itself is updated at commit (trigger capacity_reservations_apply), so
      // concurrent reservations do not queue behind each other for the rest of their
      // transactions. Here, an unlocked read refuses what cannot fit; a race lost between this
      // read and the commit is refused at commit by the check constraint.
      const [current] = await q
        .select({ total: capacity.total, used: capacity.used })
        .from(capacity)
        .where(
          and(eq(capacity.datacenterId, input.datacenterId), eq(capacity.resource, input.resource)),
        );
      const available = current ? current.total - current.used : 0;
      if (available < input.amount) {
        throw new CapacityExhaustedError(
          input.datacenterId,
          input.resource,
          input.amount,
          available,
        );
      }
    });
  }

  /**
   * Releases everything `owner` holds — VLANs, prefixes (merging free buddies back), servers and
   * capacity — and returns what was released. Releasing what is not held is a no-op.
   */
  releaseAll(tx: Tx, owner: Owner): Promise<Allocations> {
    return this.inTx(tx, async (q) => {
      const released = (await this.allocationsIn(q, [owner.id])).get(owner.id) as Allocations;
      if (holdsNothing(released)) return released;
      await q
        .update(vlans)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(eq(vlans.ownerId, owner.id));
      await q
        .update(servers)
        .set({
          ownerKind: null,
          ownerId: null,
          reservedAt: null,
          version: sql`${servers.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(eq(servers.ownerId, owner.id));
      const blocks = await q
        .update(ipBlocks)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(eq(ipBlocks.ownerId, owner.id))
        .returning({ id: ipBlocks.id, poolId: ipBlocks.poolId, prefix: ipBlocks.prefix });
      for (const block of blocks) await this.#merge(q, block);
      // The capacity row gives the amounts back at commit (trigger capacity_reservations_apply).
      await q.delete(capacityReservations).where(eq(capacityReservations.ownerId, owner.id));
      return released;
    });
  }

  /** Releases the VLANs `owner` holds in network pools other than `keep` (it moved pools). */
  releaseVlansExcept(tx: Tx, owner: Owner, keep: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .update(vlans)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(and(eq(vlans.ownerId, owner.id), sql`${vlans.networkPool} <> ${keep}`));
    });
  }

  /** Releases the prefixes `owner` holds other than `keep` (after a network changed size). */
  releasePrefixesExcept(tx: Tx, owner: Owner, keep: string): Promise<string[]> {
    return this.inTx(tx, async (q) => {
      const blocks = await q
        .update(ipBlocks)
        .set({ ownerKind: null, ownerId: null, reservedAt: null })
        .where(and(eq(ipBlocks.ownerId, owner.id), sql`${ipBlocks.prefix} <> ${keep}::cidr`))
        .returning({ id: ipBlocks.id, poolId: ipBlocks.poolId, prefix: ipBlocks.prefix });
      for (const block of blocks) await this.#merge(q, block);
      return blocks.map((b) => b.prefix);
    });
  }

  /** What `owner` holds. */
  allocationsOf(ownerId: string, tx?: Tx): Promise<Allocations> {
    return this.reading(
      tx,
      async (q) => (await this.allocationsIn(q, [ownerId])).get(ownerId) as Allocations,
    );
  }

  /** What each of `ownerIds` holds, in one statement. */
  holdings(tx: Tx, ownerIds: readonly string[]): Promise<Map<string, Allocations>> {
    return this.inTx(tx, (q) => this.allocationsIn(q, ownerIds));
  }

  /**
   * What each owner holds, in one statement for all of them: VLANs by id, prefixes by address,
   * servers by name.
   */
  protected async allocationsIn(
    q: Orm,
    ownerIds: readonly string[],
  ): Promise<Map<string, Allocations>> {
    const out = new Map<string, Allocations>();
    if (ownerIds.length === 0) return out;
    for (const id of ownerIds) out.set(id, { vlans: [], prefixes: [], servers: [], capacity: [] });
    const ids = `{${ownerIds.join(",")}}`;
    const result = await q.execute(sql`
      SELECT 'vlan' AS what, owner_id::text AS owner, datacenter_id AS dc, network_pool AS pool,
             vlan_id::text AS value, NULL::text AS extra, NULL::numeric AS amount,
             vlan_id AS by_number, NULL::cidr AS by_address, NULL::text AS by_name
        FROM ${vlans} WHERE owner_id = ANY(${ids}::uuid[])
      UNION ALL
      SELECT 'prefix', owner_id::text, datacenter_id, network_pool, prefix::text, NULL, NULL,
             NULL, prefix, NULL
        FROM ${ipBlocks} WHERE owner_id = ANY(${ids}::uuid[])
      UNION ALL
      SELECT 'server', owner_id::text, datacenter_id, pool, id::text, name || '/' || machine_class,
             NULL, NULL, NULL, name
        FROM ${servers} WHERE owner_id = ANY(${ids}::uuid[])
      UNION ALL
      SELECT 'capacity', owner_id::text, datacenter_id, NULL, resource, NULL, amount,
             NULL, NULL, resource
        FROM ${capacityReservations} WHERE owner_id = ANY(${ids}::uuid[])
      ORDER BY what, by_number, by_address, by_name`);
    for (const row of rowsOf<{
      what: string;
      owner: string;
      dc: string;
      pool: string | null;
      value: string;
      extra: string | null;
      amount: string | number | null;
    }>(result)) {
      const held = out.get(row.owner);
      if (!held) continue;
      if (row.what === "vlan")
        held.vlans.push({
          datacenterId: row.dc,
          vlanId: Number(row.value),
          networkPool: row.pool ?? "",
        });
      else if (row.what === "prefix")
        held.prefixes.push({ prefix: row.value, networkPool: row.pool ?? "" });
      else if (row.what === "server") {
        const slash = (row.extra ?? "").indexOf("/");
        held.servers.push({
          id: row.value,
          name: (row.extra ?? "").slice(0, slash),
          machineClass: (row.extra ?? "").slice(slash + 1),
          pool: row.pool ?? "",
        });
      } else
        held.capacity.push({
          datacenterId: row.dc,
          resource: row.value,
          amount: Number(row.amount),
        });
    }
    return out;
  }

  /** Merges a freed block with its free buddy, repeatedly, up to the pool's root. */
  async #merge(q: Orm, start: { id: string; poolId: string; prefix: string }): Promise<void> {
    let block = { id: start.id, prefix: parsePrefix(start.prefix) };
    const [pool] = await q
      .select({ cidr: ipPools.cidr })
      .from(ipPools)
      .where(eq(ipPools.id, start.poolId));
    if (!pool) return;
    const root = parsePrefix(pool.cidr);
    while (block.prefix.length > root.length) {
      const mate: Prefix = buddy(block.prefix);
      // A buddy locked by another transaction is being split or merged: leave it; the blocks
      // stay correct (never overlapping), just less coalesced.
      const found = await q.execute(sql`
        SELECT id FROM ${ipBlocks}
        WHERE pool_id = ${start.poolId} AND prefix = ${formatPrefix(mate)}::cidr AND owner_id IS NULL
        FOR UPDATE SKIP LOCKED`);
      const mateRow = rowsOf<{ id: string }>(found)[0];
      if (!mateRow) return;
      const merged = parent(block.prefix);
      await q.delete(ipBlocks).where(inArray(ipBlocks.id, [block.id, mateRow.id]));
      const id = this.newId();
      const [meta] = await q
        .select({ networkPool: ipPools.networkPool, datacenterId: ipPools.datacenterId })
        .from(ipPools)
        .where(eq(ipPools.id, start.poolId));
      await q.insert(ipBlocks).values({
        id,
        poolId: start.poolId,
        networkPool: meta?.networkPool ?? "",
        datacenterId: meta?.datacenterId ?? "",
        prefix: formatPrefix(merged),
      });
      block = { id, prefix: merged };
    }
  }
}
