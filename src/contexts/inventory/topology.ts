import { and, asc, count, eq, gte, isNotNull, isNull, lte, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  type Orm,
  SqlState,
  sqlStateOf,
  type Tx,
} from "../../db/index.js";
import { InUseError, NotFoundError, OverlapError, sameJson } from "../../kernel/index.js";
import { formatPrefix, parsePrefix } from "./ipmath.js";
import {
  capacity,
  datacenters,
  ipBlocks,
  ipPools,
  networkPools,
  serverPools,
  servers,
  vlanRanges,
  vlans,
} from "./schema.js";

import { type PoolUsage, type ServerSpec } from "./model.js";

/**
 * The physical inventory of the inventory context, as platform configuration describes it:
 * datacenters with their capacity, network pools with their VLANs and prefixes, server pools
 * with their servers, and what tenants may be offered of them. Synced by the platform
 * controllers; read by reservations and admission.
 */
export class TopologyStore extends ContextStore {
  protected readonly newId: () => string;

  constructor(db: Database, newId: () => string) {
    super(db, ContextRole.inventory);
    this.newId = newId;
  }

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
            id: this.newId(),
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
   * @throws {OverlapError} when a range or prefix overlaps one of another pool of the
   *   datacenter, naming that pool and its range or prefix (`other`); the database's exclusion
   *   constraints refuse the same, unnamed, when two applies race.
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
        // Named here so the refusal says which pool and range; the exclusion constraint below
        // still decides between two concurrent applies.
        const [clash] = await q
          .select({ pool: vlanRanges.networkPool, first: vlanRanges.first, last: vlanRanges.last })
          .from(vlanRanges)
          .where(
            and(
              eq(vlanRanges.datacenterId, input.datacenterId),
              lte(vlanRanges.first, range.last),
              gte(vlanRanges.last, range.first),
            ),
          )
          .orderBy(asc(vlanRanges.networkPool), asc(vlanRanges.first))
          .limit(1);
        if (clash)
          throw new OverlapError("VLAN range", key(range), `datacenter ${input.datacenterId}`, {
            other: { kind: "NetworkPool", name: clash.pool, value: key(clash) },
          });
        const id = this.newId();
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
        const [clash] = await q
          .select({ pool: ipPools.networkPool, cidr: ipPools.cidr })
          .from(ipPools)
          .where(
            and(
              eq(ipPools.datacenterId, input.datacenterId),
              sql`${ipPools.cidr} && ${cidr}::cidr`,
            ),
          )
          .orderBy(asc(ipPools.networkPool), asc(ipPools.cidr))
          .limit(1);
        if (clash)
          throw new OverlapError("prefix", cidr, `datacenter ${input.datacenterId}`, {
            other: { kind: "NetworkPool", name: clash.pool, value: clash.cidr },
          });
        const id = this.newId();
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
          id: this.newId(),
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

  async #requireDatacenter(q: Orm, name: string): Promise<void> {
    const [dc] = await q
      .select({ name: datacenters.name })
      .from(datacenters)
      .where(eq(datacenters.name, name));
    if (!dc) throw new NotFoundError("Datacenter", name);
  }
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
