import { and, asc, count, eq, gt, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  labelCondition,
  mapUniqueViolation,
  type Orm,
  rowsOf,
  SqlState,
  sqlStateOf,
  type Tx,
} from "../../db/index.js";
import {
  AlreadyExistsError,
  CapacityExhaustedError,
  InUseError,
  type ListOptions,
  NotFoundError,
  OverlapError,
  type Page,
  PoolExhaustedError,
  sameJson,
  toPage,
  VersionConflictError,
} from "../../kernel/index.js";
import { carve, formatPrefix, parent, parsePrefix, buddy, type Prefix } from "./ipmath.js";
import { demandDelta, demandOf, QuotaStore } from "./quotas.js";
import {
  capacity,
  capacityReservations,
  datacenters,
  ipBlocks,
  ipPools,
  networkPools,
  resources,
  serverPools,
  servers,
  vlanRanges,
  vlans,
} from "./schema.js";

/** The channel every change of tenant intent is announced on (`<kind>:<id>`), after commit. */
export const INTENT_CHANNEL = "dv_intent";

/**
 * The shard of a resource id in SQL, as `shardOf` in src/reconcile computes it: the last 32 bits
 * of the UUID as an unsigned number (modulo the shard count, applied by the caller).
 */
export const SHARD_SQL = (column: string): string =>
  `('x' || right(replace(${column}::text, '-', ''), 8))::bit(32)::bigint`;

/** Kinds of tenant resources the inventory holds. */
export const RESOURCE_KINDS = ["network", "server", "cluster", "bucket"] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export type Resource = Omit<typeof resources.$inferSelect, "kind"> & { kind: ResourceKind };
export type Server = typeof servers.$inferSelect;

/** Who holds an allocation: a resource of the graph. */
export interface Owner {
  readonly kind: string;
  readonly id: string;
}

/** A server as a `ServerPool` lists it. */
export interface ServerSpec {
  readonly name: string;
  readonly machineClass: string;
  readonly cpuCores: number;
  readonly memoryMib: number;
  readonly spec?: Record<string, unknown>;
}

/** What an owner holds. */
export interface Allocations {
  readonly vlans: { datacenterId: string; vlanId: number; networkPool: string }[];
  readonly prefixes: { prefix: string; networkPool: string }[];
  readonly servers: { id: string; name: string; machineClass: string; pool: string }[];
  readonly capacity: { datacenterId: string; resource: string; amount: number }[];
}

/** Free and total counts of a pool, for its status. */
export interface PoolUsage {
  readonly total: number;
  readonly free: number;
}

const empty = (a: Allocations): boolean =>
  a.vlans.length + a.prefixes.length + a.servers.length + a.capacity.length === 0;

/**
 * The inventory context: tenant resources (the graph), the physical inventory synced from
 * platform configuration, and every scarce-resource allocation. Reservations are decided by the
 * database: a VLAN id is a primary key per datacenter, IP blocks of a pool cannot overlap
 * (exclusion constraint), a server row has one owner, capacity cannot go below zero (check).
 * Free items are picked with `FOR UPDATE SKIP LOCKED`, so contenders never wait on each other.
 */
export class InventoryStore extends ContextStore {
  readonly #newId: () => string;
  /** Tenant quotas: charged when a resource is recorded or changed, refunded when it is gone. */
  readonly quotas: QuotaStore;

  constructor(db: Database, newId: () => string) {
    super(db, ContextRole.inventory);
    this.#newId = newId;
    this.quotas = new QuotaStore(db);
  }

  // ---------------------------------------------------------------- physical inventory (sync)

  /** Creates or updates a datacenter from its `Datacenter` resource. */
  applyDatacenter(
    tx: Tx,
    input: {
      name: string;
      displayName: string;
      site: string;
      failureDomain: string;
      generation: number;
      spec: Record<string, unknown>;
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .insert(datacenters)
        .values(input)
        .onConflictDoUpdate({
          target: datacenters.name,
          set: {
            displayName: input.displayName,
            site: input.site,
            failureDomain: input.failureDomain,
            generation: input.generation,
            spec: input.spec,
            version: sql`${datacenters.version} + 1`,
            updatedAt: sql`now()`,
          },
        });
    });
  }

  /**
   * Removes a datacenter.
   *
   * @throws {InUseError} while pools or resources are placed in it.
   */
  deleteDatacenter(tx: Tx, name: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      const users = [
        ...(
          await q
            .select({ n: serverPools.name })
            .from(serverPools)
            .where(eq(serverPools.datacenterId, name))
            .limit(5)
        ).map((r) => `ServerPool ${r.n}`),
        ...(
          await q
            .select({ n: networkPools.name })
            .from(networkPools)
            .where(eq(networkPools.datacenterId, name))
            .limit(5)
        ).map((r) => `NetworkPool ${r.n}`),
      ];
      if (users.length > 0) throw new InUseError("Datacenter", name, users);
      await q.delete(capacity).where(eq(capacity.datacenterId, name));
      await q.delete(datacenters).where(eq(datacenters.name, name));
    });
  }

  /**
   * Makes a server pool hold exactly `servers`: new ones are added, free ones updated, free ones
   * no longer listed removed. A server that is allocated but no longer listed stays until its
   * owner releases it, and is returned in `retained`.
   *
   * @throws {NotFoundError} when the datacenter is unknown.
   */
  applyServerPool(
    tx: Tx,
    input: {
      name: string;
      datacenterId: string;
      generation: number;
      servers: readonly ServerSpec[];
    },
  ): Promise<{ retained: string[] }> {
    return this.inTx(tx, async (q) => {
      await this.#requireDatacenter(q, input.datacenterId);
      await q
        .insert(serverPools)
        .values({
          name: input.name,
          datacenterId: input.datacenterId,
          generation: input.generation,
        })
        .onConflictDoUpdate({
          target: serverPools.name,
          set: {
            generation: input.generation,
            version: sql`${serverPools.version} + 1`,
            updatedAt: sql`now()`,
          },
        });
      const existing = await q.select().from(servers).where(eq(servers.pool, input.name));
      const byName = new Map(existing.map((s) => [s.name, s]));
      const wanted = new Set(input.servers.map((s) => s.name));
      for (const spec of input.servers) {
        const current = byName.get(spec.name);
        if (!current) {
          await q.insert(servers).values({
            id: this.#newId(),
            pool: input.name,
            datacenterId: input.datacenterId,
            name: spec.name,
            machineClass: spec.machineClass,
            cpuCores: spec.cpuCores,
            memoryMib: spec.memoryMib,
            spec: spec.spec ?? {},
          });
        } else if (
          current.machineClass !== spec.machineClass ||
          current.cpuCores !== spec.cpuCores ||
          current.memoryMib !== spec.memoryMib ||
          !sameJson(current.spec, spec.spec ?? {})
        ) {
          await q
            .update(servers)
            .set({
              machineClass: spec.machineClass,
              cpuCores: spec.cpuCores,
              memoryMib: spec.memoryMib,
              spec: spec.spec ?? {},
              version: sql`${servers.version} + 1`,
              updatedAt: sql`now()`,
            })
            .where(eq(servers.id, current.id));
        }
      }
      const retained: string[] = [];
      for (const server of existing) {
        if (wanted.has(server.name)) continue;
        if (server.ownerId) retained.push(server.name);
        else await q.delete(servers).where(and(eq(servers.id, server.id), isNull(servers.ownerId)));
      }
      return { retained };
    });
  }

  /**
   * Removes a server pool and its servers.
   *
   * @throws {InUseError} naming the owners while any server is allocated.
   */
  deleteServerPool(tx: Tx, name: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      const owned = await q
        .select({ name: servers.name, ownerKind: servers.ownerKind, ownerId: servers.ownerId })
        .from(servers)
        .where(and(eq(servers.pool, name), isNotNull(servers.ownerId)))
        .limit(5);
      if (owned.length > 0) {
        throw new InUseError(
          "ServerPool",
          name,
          owned.map((s) => `${s.ownerKind} ${s.ownerId} (server ${s.name})`),
        );
      }
      await q.delete(servers).where(eq(servers.pool, name));
      await q.delete(serverPools).where(eq(serverPools.name, name));
    });
  }

  /**
   * Makes a network pool hold exactly these VLAN ranges and IP prefixes. A range or prefix no
   * longer listed is removed when nothing in it is allocated.
   *
   * @throws {InUseError} when a range or prefix to remove still has allocations.
   * @throws {NotFoundError} when the datacenter is unknown.
   * Overlaps with another pool of the datacenter are refused by the database (exclusion).
   */
  applyNetworkPool(
    tx: Tx,
    input: {
      name: string;
      datacenterId: string;
      generation: number;
      /** Networks of the datacenter that name no pool use this one. */
      isDefault?: boolean;
      vlanRanges: readonly { first: number; last: number }[];
      prefixes: readonly string[];
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await this.#requireDatacenter(q, input.datacenterId);
      await q
        .insert(networkPools)
        .values({
          name: input.name,
          datacenterId: input.datacenterId,
          generation: input.generation,
          isDefault: input.isDefault ?? false,
        })
        .onConflictDoUpdate({
          target: networkPools.name,
          set: {
            isDefault: input.isDefault ?? false,
            generation: input.generation,
            version: sql`${networkPools.version} + 1`,
            updatedAt: sql`now()`,
          },
        });

      const ranges = await q
        .select()
        .from(vlanRanges)
        .where(eq(vlanRanges.networkPool, input.name));
      const key = (r: { first: number; last: number }) => `${r.first}-${r.last}`;
      const wantedRanges = new Set(input.vlanRanges.map(key));
      for (const range of ranges) {
        if (wantedRanges.has(key(range))) continue;
        const [used] = await q
          .select({ n: count() })
          .from(vlans)
          .where(and(eq(vlans.rangeId, range.id), isNotNull(vlans.ownerId)));
        if (used && used.n > 0) {
          throw new InUseError("VLAN range", `${key(range)} of NetworkPool ${input.name}`, [
            `${used.n} allocated VLANs`,
          ]);
        }
        await q.delete(vlans).where(eq(vlans.rangeId, range.id));
        await q.delete(vlanRanges).where(eq(vlanRanges.id, range.id));
      }
      const haveRanges = new Set(ranges.map(key));
      for (const range of input.vlanRanges) {
        if (haveRanges.has(key(range))) continue;
        const id = this.#newId();
        await rethrowOverlap(
          () =>
            q
              .insert(vlanRanges)
              .values({ id, networkPool: input.name, datacenterId: input.datacenterId, ...range }),
          "VLAN range",
          key(range),
          `datacenter ${input.datacenterId}`,
        );
        await q.execute(sql`
          INSERT INTO ${vlans} (datacenter_id, vlan_id, range_id, network_pool)
          SELECT ${input.datacenterId}, v, ${id}::uuid, ${input.name} FROM generate_series(${range.first}::int, ${range.last}::int) AS v`);
      }

      const pools = await q
        .select({ id: ipPools.id, cidr: ipPools.cidr })
        .from(ipPools)
        .where(eq(ipPools.networkPool, input.name));
      const wantedPrefixes = new Set(input.prefixes.map((p) => formatPrefix(parsePrefix(p))));
      for (const pool of pools) {
        if (wantedPrefixes.has(pool.cidr)) continue;
        const [used] = await q
          .select({ n: count() })
          .from(ipBlocks)
          .where(and(eq(ipBlocks.poolId, pool.id), isNotNull(ipBlocks.ownerId)));
        if (used && used.n > 0) {
          throw new InUseError("prefix", `${pool.cidr} of NetworkPool ${input.name}`, [
            `${used.n} allocated blocks`,
          ]);
        }
        await q.delete(ipPools).where(eq(ipPools.id, pool.id));
      }
      const havePrefixes = new Set(pools.map((p) => p.cidr));
      for (const cidr of wantedPrefixes) {
        if (havePrefixes.has(cidr)) continue;
        const id = this.#newId();
        await rethrowOverlap(
          () =>
            q
              .insert(ipPools)
              .values({ id, networkPool: input.name, datacenterId: input.datacenterId, cidr }),
          "prefix",
          cidr,
          `datacenter ${input.datacenterId}`,
        );
        await q.insert(ipBlocks).values({
          id: this.#newId(),
          poolId: id,
          networkPool: input.name,
          datacenterId: input.datacenterId,
          prefix: cidr,
        });
      }
    });
  }

  /**
   * Removes a network pool with its ranges and prefixes.
   *
   * @throws {InUseError} naming the owners while any VLAN or block is allocated.
   */
  deleteNetworkPool(tx: Tx, name: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      const usedVlans = await q
        .select({ owner: vlans.ownerId, kind: vlans.ownerKind })
        .from(vlans)
        .where(and(eq(vlans.networkPool, name), isNotNull(vlans.ownerId)))
        .limit(5);
      const usedBlocks = await q
        .select({ owner: ipBlocks.ownerId, kind: ipBlocks.ownerKind })
        .from(ipBlocks)
        .where(and(eq(ipBlocks.networkPool, name), isNotNull(ipBlocks.ownerId)))
        .limit(5);
      const users = [...new Set([...usedVlans, ...usedBlocks].map((u) => `${u.kind} ${u.owner}`))];
      if (users.length > 0) throw new InUseError("NetworkPool", name, users);
      await q.delete(vlans).where(eq(vlans.networkPool, name));
      await q.delete(vlanRanges).where(eq(vlanRanges.networkPool, name));
      await q.delete(ipPools).where(eq(ipPools.networkPool, name));
      await q.delete(networkPools).where(eq(networkPools.name, name));
    });
  }

  /**
   * Sets the total of a finite capacity of a datacenter.
   *
   * @throws {InUseError} when the new total is below what is already reserved.
   */
  setCapacity(
    tx: Tx,
    input: { datacenterId: string; resource: string; total: number },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      try {
        await q
          .insert(capacity)
          .values(input)
          .onConflictDoUpdate({
            target: [capacity.datacenterId, capacity.resource],
            set: {
              total: input.total,
              version: sql`${capacity.version} + 1`,
              updatedAt: sql`now()`,
            },
          });
      } catch (err) {
        if (sqlStateOf(err) === SqlState.CheckViolation) {
          throw new InUseError("capacity", `${input.resource} of ${input.datacenterId}`, [
            `reservations above the new total ${input.total}`,
          ]);
        }
        throw err;
      }
    });
  }

  /** Totals and free counts of a server pool (servers) and a network pool (VLANs, addresses). */
  async serverPoolUsage(name: string, tx?: Tx): Promise<PoolUsage & { owners: string[] }> {
    return this.reading(tx, async (q) => {
      const rows = await q
        .select({ ownerKind: servers.ownerKind, ownerId: servers.ownerId })
        .from(servers)
        .where(eq(servers.pool, name));
      const owners = [
        ...new Set(rows.filter((r) => r.ownerId).map((r) => `${r.ownerKind} ${r.ownerId}`)),
      ];
      return { total: rows.length, free: rows.filter((r) => !r.ownerId).length, owners };
    });
  }

  async networkPoolUsage(name: string, tx?: Tx): Promise<{ vlans: PoolUsage; owners: string[] }> {
    return this.reading(tx, async (q) => {
      const [v] = await q
        .select({
          total: count(),
          free: sql<number>`count(*) FILTER (WHERE ${vlans.ownerId} IS NULL)`,
        })
        .from(vlans)
        .where(eq(vlans.networkPool, name));
      const owned = await q
        .selectDistinct({ kind: vlans.ownerKind, id: vlans.ownerId })
        .from(vlans)
        .where(and(eq(vlans.networkPool, name), isNotNull(vlans.ownerId)))
        .union(
          q
            .selectDistinct({ kind: ipBlocks.ownerKind, id: ipBlocks.ownerId })
            .from(ipBlocks)
            .where(and(eq(ipBlocks.networkPool, name), isNotNull(ipBlocks.ownerId))),
        );
      return {
        vlans: { total: Number(v?.total ?? 0), free: Number(v?.free ?? 0) },
        owners: owned.map((o) => `${o.kind} ${o.id}`),
      };
    });
  }

  async #requireDatacenter(q: Orm, name: string): Promise<void> {
    const [dc] = await q
      .select({ name: datacenters.name })
      .from(datacenters)
      .where(eq(datacenters.name, name));
    if (!dc) throw new NotFoundError("Datacenter", name);
  }

  // ---------------------------------------------------------------- reservations

  /**
   * Picks free items without waiting on rows other transactions hold (`SKIP LOCKED`); when that
   * finds nothing it waits on the held candidates once (`FOR UPDATE`) and looks again, so a row
   * being split or taken right now is never mistaken for an exhausted pool. Only when no free
   * row exists does the caller hear "exhausted".
   */
  async #pick<T>(
    attempt: (lock: ReturnType<typeof sql>) => Promise<T | undefined>,
  ): Promise<T | undefined> {
    for (let round = 0; round < 4; round++) {
      const got = (await attempt(sql`FOR UPDATE SKIP LOCKED`)) ?? (await attempt(sql`FOR UPDATE`));
      if (got !== undefined) return got;
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
    return this.inTx(tx, async (q) => {
      // What the owner holds there, else a free one taken: one statement.
      const row = await this.#pick(async (lock) => {
        const picked = await q.execute(sql`
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
          SELECT datacenter_id, vlan_id FROM taken`);
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
      const block = await this.#pick(async (lock) => {
        // Ordered by the cidr column, not by the text selected under the same name: by address
        // ("10.0.0.8" before "10.0.0.40").
        const picked = await q.execute(sql`
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
          SELECT false, id, pool_id, datacenter_id, prefix FROM picked`);
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
            { id: this.#newId(), ...base, prefix: formatPrefix(allocated), ...owner },
            ...remainders.map((r) => ({ id: this.#newId(), ...base, prefix: formatPrefix(r) })),
          ]);
      }
      return { prefix: formatPrefix(allocated), datacenterId: block.datacenter_id };
    });
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
      const ids: string[] = [];
      // Take what is free without waiting; wait on held servers only for what is still missing.
      await this.#pick(async (lock) => {
        const picked = await q.execute(sql`
          WITH picked AS (
            SELECT id FROM ${servers}
            WHERE datacenter_id = ${input.datacenterId} AND machine_class = ${input.machineClass}
              AND owner_id IS NULL ${input.pool ? sql`AND pool = ${input.pool}` : sql``}
            ORDER BY name LIMIT ${missing - ids.length}
            ${lock}
          )
          UPDATE ${servers} s SET owner_kind = ${input.owner.kind}, owner_id = ${input.owner.id}, reserved_at = now(),
            version = s.version + 1, updated_at = now()
          FROM picked WHERE s.id = picked.id
          RETURNING s.id`);
        ids.push(...rowsOf<{ id: string }>(picked).map((r) => r.id));
        return ids.length >= missing ? true : undefined;
      });
      if (ids.length < missing) {
        // The transaction is rolled back by the caller, which frees what this call took.
        throw new PoolExhaustedError(
          "server",
          input.pool ?? `${input.machineClass} in ${input.datacenterId}`,
          `${missing} free ${input.machineClass} servers needed, ${ids.length} available`,
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
      const released = await this.#allocations(q, owner.id);
      if (empty(released)) return released;
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
      const id = this.#newId();
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

  /** A datacenter as synced from platform configuration. @throws {NotFoundError} */
  async getDatacenter(name: string, tx?: Tx): Promise<typeof datacenters.$inferSelect> {
    const [row] = await this.reading(tx, (q) =>
      q.select().from(datacenters).where(eq(datacenters.name, name)),
    );
    if (!row) throw new NotFoundError("Datacenter", name);
    return row;
  }

  /**
   * What every datacenter offers tenants, in three statements: its network pools (and which is
   * its default) and the machine classes its server pools hold servers of.
   */
  async offers(
    tx?: Tx,
  ): Promise<
    Map<string, { networkPools: { name: string; isDefault: boolean }[]; machineClasses: string[] }>
  > {
    return this.reading(tx, async (q) => {
      const dcs = await q
        .select({ name: datacenters.name })
        .from(datacenters)
        .orderBy(asc(datacenters.name));
      const pools = await q
        .select({
          name: networkPools.name,
          isDefault: networkPools.isDefault,
          datacenterId: networkPools.datacenterId,
        })
        .from(networkPools)
        .orderBy(asc(networkPools.name));
      const classes = await q
        .selectDistinct({ datacenterId: servers.datacenterId, machineClass: servers.machineClass })
        .from(servers)
        .orderBy(asc(servers.machineClass));
      return new Map(
        dcs.map((dc) => [
          dc.name,
          {
            networkPools: pools
              .filter((p) => p.datacenterId === dc.name)
              .map((p) => ({ name: p.name, isDefault: p.isDefault })),
            machineClasses: classes
              .filter((c) => c.datacenterId === dc.name)
              .map((c) => c.machineClass),
          },
        ]),
      );
    });
  }

  /** The network pool networks of a datacenter use when they name none. @throws {NotFoundError} */
  async defaultNetworkPool(datacenterId: string, tx?: Tx): Promise<string> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select({ name: networkPools.name })
        .from(networkPools)
        .where(and(eq(networkPools.datacenterId, datacenterId), eq(networkPools.isDefault, true)))
        .orderBy(asc(networkPools.name))
        .limit(1),
    );
    if (!row) throw new NotFoundError("default NetworkPool of datacenter", datacenterId);
    return row.name;
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

  /** Every tenant resource's kind and id (for a controller's resync and shard takeover). */
  allResourceKeys(): Promise<{ kind: ResourceKind; id: string }[]> {
    return this.reading(undefined, async (q) => {
      const rows = await q.select({ kind: resources.kind, id: resources.id }).from(resources);
      return rows as { kind: ResourceKind; id: string }[];
    });
  }

  /**
   * What a resync of `shards` (of `shardCount`, by {@link SHARD_SQL}) must look at, in one query:
   * the keys of resources that need a pass, and how many are converged — the generation observed,
   * `Ready`, every step done, not being deleted, and for `observe.kinds` an observation sent within
   * `observe.everyMs` of `now`. Converged resources are counted, not listed.
   */
  resyncDue(
    shards: readonly number[],
    shardCount: number,
    observe: { readonly kinds: readonly string[]; readonly everyMs: number },
    now: Date,
  ): Promise<{ keys: string[]; converged: number }> {
    return this.reading(undefined, async (q) => {
      const since = new Date(now.getTime() - observe.everyMs).toISOString();
      const result = await q.execute(sql`
        WITH r AS (
          SELECT kind, id,
                 deletion_requested_at IS NULL
             AND observed_generation = generation
             AND status @> '{"conditions":[{"type":"Ready","status":"True"}]}'
             AND NOT jsonb_path_exists(status, '$.steps.* ? (@.state != "done")')
             AND (kind <> ALL(${`{${observe.kinds.join(",")}}`}::text[]) OR EXISTS (
                   SELECT 1 FROM jsonb_each(status->'steps') s
                    WHERE s.value->>'action' = 'observe'
                      AND (s.value->>'dispatchedAt')::timestamptz >= ${since}::timestamptz))
                 AS converged
            FROM ${resources}
           WHERE ${sql.raw(SHARD_SQL("id"))} % ${shardCount} = ANY(${`{${shards.join(",")}}`}::int[])
        )
        SELECT kind || ':' || id AS key, NULL::bigint AS converged FROM r WHERE NOT converged
        UNION ALL
        SELECT NULL, count(*) FROM r WHERE converged`);
      const keys: string[] = [];
      let converged = 0;
      for (const row of rowsOf<{ key: string | null; converged: string | number | null }>(result)) {
        if (row.key === null) converged = Number(row.converged ?? 0);
        else keys.push(row.key);
      }
      return { keys, converged };
    });
  }

  /** Announces a resource so its reconciler looks at it now (a task of it was cancelled, …). */
  touch(tx: Tx, resource: { kind: string; id: string }): Promise<void> {
    return this.inTx(tx, (q) => announce(q, resource));
  }

  /** What `owner` holds. */
  allocationsOf(ownerId: string, tx?: Tx): Promise<Allocations> {
    return this.reading(tx, (q) => this.#allocations(q, ownerId));
  }

  async #allocations(q: Orm, ownerId: string): Promise<Allocations> {
    // One statement after the other: they share one connection (a transaction's), and
    // node-postgres does not run two queries of one client at once.
    const v = await q
      .select({
        datacenterId: vlans.datacenterId,
        vlanId: vlans.vlanId,
        networkPool: vlans.networkPool,
      })
      .from(vlans)
      .where(eq(vlans.ownerId, ownerId))
      .orderBy(asc(vlans.vlanId));
    const p = await q
      .select({ prefix: ipBlocks.prefix, networkPool: ipBlocks.networkPool })
      .from(ipBlocks)
      .where(eq(ipBlocks.ownerId, ownerId))
      .orderBy(asc(ipBlocks.prefix));
    const s = await q
      .select({
        id: servers.id,
        name: servers.name,
        machineClass: servers.machineClass,
        pool: servers.pool,
      })
      .from(servers)
      .where(eq(servers.ownerId, ownerId))
      .orderBy(asc(servers.name));
    const c = await q
      .select({
        datacenterId: capacityReservations.datacenterId,
        resource: capacityReservations.resource,
        amount: capacityReservations.amount,
      })
      .from(capacityReservations)
      .where(eq(capacityReservations.ownerId, ownerId));
    return { vlans: v, prefixes: p, servers: s, capacity: c };
  }

  // ---------------------------------------------------------------- tenant resources

  /**
   * Records a tenant's resource and charges what its spec asks for to the tenant's quotas.
   *
   * @param options.charge false: the caller charges `demandOf` the resource itself, later in the
   *   same transaction (as late as it can, so the quota rows' locks are held briefly).
   * @throws {AlreadyExistsError} when the environment already has a resource of that kind and name.
   * @throws {QuotaExceededError} when the tenant's quotas do not allow it.
   */
  createResource(
    tx: Tx,
    input: {
      kind: ResourceKind;
      tenantId: string;
      projectId: string;
      environmentId: string;
      datacenterId: string;
      name: string;
      labels?: Record<string, string>;
      spec: Record<string, unknown>;
    },
    options: { charge?: boolean } = {},
  ): Promise<Resource> {
    return this.inTx(tx, (q) =>
      mapUniqueViolation(
        async () => {
          const [row] = await q
            .insert(resources)
            .values({ id: this.#newId(), ...input, labels: input.labels ?? {} })
            .returning();
          const resource = row as Resource;
          if (options.charge !== false) {
            await this.quotas.charge(tx, input.tenantId, demandOf(input.kind, input.spec, input));
          }
          await announce(q, resource);
          return resource;
        },
        ["resources_environment_kind_name"],
        (_c, cause) =>
          new AlreadyExistsError(input.kind, input.name, "this environment", { cause }),
      ),
    );
  }

  /** A tenant's resource. @throws {NotFoundError} also when it belongs to another tenant. */
  async getResource(tenantId: string, id: string, tx?: Tx): Promise<Resource> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(resources)
        .where(and(eq(resources.id, id), eq(resources.tenantId, tenantId))),
    );
    if (!row) throw new NotFoundError("resource", id);
    return row as Resource;
  }

  /**
   * A tenant's resource by its name in an environment: one indexed lookup
   * (`resources_environment_kind_name`).
   *
   * @throws {NotFoundError}
   */
  async getResourceByName(
    where: { tenantId: string; projectId: string; environmentId: string; kind: ResourceKind },
    name: string,
    tx?: Tx,
  ): Promise<Resource> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(resources)
        .where(
          and(
            eq(resources.environmentId, where.environmentId),
            eq(resources.kind, where.kind),
            eq(resources.name, name),
            eq(resources.tenantId, where.tenantId),
            eq(resources.projectId, where.projectId),
          ),
        ),
    );
    if (!row) throw new NotFoundError(where.kind, name);
    return row as Resource;
  }

  /** Any tenant's resource, for reconcilers. @throws {NotFoundError} */
  async getResourceById(id: string, tx?: Tx): Promise<Resource> {
    const [row] = await this.reading(tx, (q) =>
      q.select().from(resources).where(eq(resources.id, id)),
    );
    if (!row) throw new NotFoundError("resource", id);
    return row as Resource;
  }

  async listResources(
    filter: { tenantId: string; kind: ResourceKind; projectId?: string; environmentId?: string },
    options: ListOptions,
    tx?: Tx,
  ): Promise<Page<Resource>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(resources)
        .where(
          and(
            eq(resources.tenantId, filter.tenantId),
            eq(resources.kind, filter.kind),
            filter.projectId ? eq(resources.projectId, filter.projectId) : undefined,
            filter.environmentId ? eq(resources.environmentId, filter.environmentId) : undefined,
            options.after ? gt(resources.id, options.after) : undefined,
            labelCondition(resources.labels, options.labels ?? []),
          ),
        )
        .orderBy(asc(resources.id))
        .limit(options.limit + 1),
    );
    return toPage(rows as Resource[], options.limit);
  }

  /** How many resources live in an environment (it cannot be deleted while any do). */
  async countInEnvironment(tenantId: string, environmentId: string, tx?: Tx): Promise<number> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select({ n: count() })
        .from(resources)
        .where(and(eq(resources.tenantId, tenantId), eq(resources.environmentId, environmentId))),
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Changes what the tenant asked for; `generation` moves when the spec does, and the tenant's
   * quotas are charged (or refunded) the difference.
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   * @throws {QuotaExceededError} when the new spec asks for more than the quotas allow.
   */
  updateResourceSpec(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
    patch: { spec?: Record<string, unknown>; labels?: Record<string, string> },
  ): Promise<Resource> {
    return this.inTx(tx, async (q) => {
      // The spec being replaced, locked, for the quota difference (only when the spec changes).
      const [before] = patch.spec
        ? await q
            .select({ spec: resources.spec, kind: resources.kind })
            .from(resources)
            .where(and(eq(resources.id, id), eq(resources.tenantId, tenantId)))
            .for("update")
        : [];
      const [row] = await q
        .update(resources)
        .set({
          ...(patch.spec ? { spec: patch.spec, generation: sql`${resources.generation} + 1` } : {}),
          ...(patch.labels ? { labels: patch.labels } : {}),
          version: sql`${resources.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(resources.id, id),
            eq(resources.tenantId, tenantId),
            eq(resources.version, expectedVersion),
            isNull(resources.deletionRequestedAt),
          ),
        )
        .returning();
      if (row) {
        if (before && patch.spec) {
          await this.quotas.charge(
            tx,
            tenantId,
            demandDelta(demandOf(before.kind, before.spec, row), demandOf(row.kind, row.spec, row)),
          );
        }
        await announce(q, row);
        return row as Resource;
      }
      throw await this.#resourceMiss(q, tenantId, id, expectedVersion);
    });
  }

  /**
   * Marks a resource for deletion; reconcilers tear it down, release what it holds, then
   * {@link removeResource} it.
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   */
  requestResourceDeletion(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
  ): Promise<Resource> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(resources)
        .set({
          deletionRequestedAt: sql`coalesce(${resources.deletionRequestedAt}, now())`,
          generation: sql`${resources.generation} + 1`,
          version: sql`${resources.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(resources.id, id),
            eq(resources.tenantId, tenantId),
            eq(resources.version, expectedVersion),
          ),
        )
        .returning();
      if (row) {
        await announce(q, row);
        return row as Resource;
      }
      throw await this.#resourceMiss(q, tenantId, id, expectedVersion);
    });
  }

  /**
   * Records observed state. With `expectedVersion` it is optimistic like any edit; without, it
   * applies to whatever version is current (reconcilers own status).
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   */
  updateResourceStatus(
    tx: Tx,
    id: string,
    status: Record<string, unknown>,
    observedGeneration: number,
    expectedVersion?: number,
  ): Promise<Resource> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(resources)
        .set({
          status,
          observedGeneration,
          version: sql`${resources.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(resources.id, id),
            expectedVersion === undefined ? undefined : eq(resources.version, expectedVersion),
          ),
        )
        .returning();
      if (row) return row as Resource;
      const [current] = await q
        .select({ version: resources.version })
        .from(resources)
        .where(eq(resources.id, id));
      if (!current) throw new NotFoundError("resource", id);
      throw new VersionConflictError("resource", id, expectedVersion ?? -1, current.version);
    });
  }

  /**
   * The resources of `ids` that exist, locked (`FOR NO KEY UPDATE`, in id order) until `tx`
   * ends: a reconcile pass over many resources reads them once and writes their status with
   * {@link writeStatuses}, and a tenant's change waits for the pass to commit.
   */
  lockResources(tx: Tx, ids: readonly string[]): Promise<Resource[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.inTx(tx, async (q) => {
      const rows = await q
        .select()
        .from(resources)
        .where(inArray(resources.id, [...ids]))
        .orderBy(asc(resources.id))
        .for("no key update");
      return rows as Resource[];
    });
  }

  /**
   * Records the observed state of many resources in one statement, each only if still at the
   * version given. Returns the ids whose version had moved (nothing written for those).
   */
  writeStatuses(
    tx: Tx,
    writes: readonly {
      id: string;
      status: Record<string, unknown>;
      observedGeneration: number;
      version: number;
    }[],
  ): Promise<Set<string>> {
    if (writes.length === 0) return Promise.resolve(new Set());
    const rows = JSON.stringify(
      writes.map((w) => ({
        id: w.id,
        status: w.status,
        observed: w.observedGeneration,
        version: w.version,
      })),
    );
    return this.inTx(tx, async (q) => {
      const result = await q.execute(sql`
        UPDATE ${resources} r
           SET status = w.status, observed_generation = w.observed,
               version = r.version + 1, updated_at = now()
          FROM jsonb_to_recordset(${rows}::jsonb) AS w(id uuid, status jsonb, observed bigint, version bigint)
         WHERE r.id = w.id AND r.version = w.version
        RETURNING r.id`);
      const written = new Set(rowsOf<{ id: string }>(result).map((r) => r.id));
      return new Set(writes.map((w) => w.id).filter((id) => !written.has(id)));
    });
  }

  /** What each of `ownerIds` holds, in one statement. */
  holdings(tx: Tx, ownerIds: readonly string[]): Promise<Map<string, Allocations>> {
    const out = new Map<string, Allocations>();
    if (ownerIds.length === 0) return Promise.resolve(out);
    const ids = `{${ownerIds.join(",")}}`;
    return this.inTx(tx, async (q) => {
      const result = await q.execute(sql`
        SELECT 'vlan' AS what, owner_id::text AS owner, datacenter_id AS dc, network_pool AS pool,
               vlan_id::text AS value, NULL::text AS extra, NULL::numeric AS amount
          FROM ${vlans} WHERE owner_id = ANY(${ids}::uuid[])
        UNION ALL
        SELECT 'prefix', owner_id::text, datacenter_id, network_pool, prefix::text, NULL, NULL
          FROM ${ipBlocks} WHERE owner_id = ANY(${ids}::uuid[])
        UNION ALL
        SELECT 'server', owner_id::text, datacenter_id, pool, id::text, name || '/' || machine_class, NULL
          FROM ${servers} WHERE owner_id = ANY(${ids}::uuid[])
        UNION ALL
        SELECT 'capacity', owner_id::text, datacenter_id, NULL, resource, NULL, amount
          FROM ${capacityReservations} WHERE owner_id = ANY(${ids}::uuid[])
        ORDER BY 1, 6, 5`);
      for (const id of ownerIds)
        out.set(id, { vlans: [], prefixes: [], servers: [], capacity: [] });
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
    });
  }

  /**
   * Deletes a resource whose deletion was requested and which holds nothing any more.
   *
   * @throws {InUseError} while it still holds allocations.
   */
  removeResource(tx: Tx, id: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      const held = await this.#allocations(q, id);
      if (!empty(held)) {
        throw new InUseError("resource", id, [
          ...held.vlans.map((v) => `VLAN ${v.vlanId}`),
          ...held.prefixes.map((p) => `prefix ${p.prefix}`),
          ...held.servers.map((s) => `server ${s.name}`),
          ...held.capacity.map((c) => `${c.amount} ${c.resource}`),
        ]);
      }
      const [removed] = await q
        .delete(resources)
        .where(and(eq(resources.id, id), isNotNull(resources.deletionRequestedAt)))
        .returning();
      if (removed) {
        const refund = demandOf(removed.kind, removed.spec, removed).map((d) => ({
          ...d,
          amount: -d.amount,
        }));
        await this.quotas.charge(tx, removed.tenantId, refund);
      }
    });
  }

  async #resourceMiss(
    q: Orm,
    tenantId: string,
    id: string,
    expectedVersion: number,
  ): Promise<Error> {
    const [current] = await q
      .select({ version: resources.version, deleting: resources.deletionRequestedAt })
      .from(resources)
      .where(and(eq(resources.id, id), eq(resources.tenantId, tenantId)));
    if (!current) return new NotFoundError("resource", id);
    if (current.deleting && current.version === expectedVersion) {
      return new InUseError("resource", id, ["its own deletion, already under way"]);
    }
    return new VersionConflictError("resource", id, expectedVersion, current.version);
  }
}

/** Tells reconcilers (LISTEN dv_intent) that a resource's intent changed; sent on commit. */
async function announce(q: Orm, resource: { kind: string; id: string }): Promise<void> {
  await q.execute(sql`SELECT pg_notify(${INTENT_CHANNEL}, ${`${resource.kind}:${resource.id}`})`);
}

/** Turns the database's exclusion-constraint refusal into an {@link OverlapError}. */
async function rethrowOverlap(
  fn: () => Promise<unknown>,
  kind: string,
  value: string,
  scope: string,
): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (sqlStateOf(err) === SqlState.ExclusionViolation)
      throw new OverlapError(kind, value, scope, { cause: err });
    throw err;
  }
}
