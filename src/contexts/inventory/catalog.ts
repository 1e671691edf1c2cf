import { and, asc, count, eq, isNull, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database } from "../../db/index.js";
import {
  capacity,
  datacenters,
  ipBlocks,
  ipPools,
  networkPools,
  servers,
  vlans,
} from "./schema.js";

/** How many of something there are, and how many nobody holds. */
export interface Count {
  readonly total: number;
  readonly free: number;
}

/** What a network pool has left: VLANs, IPv4 addresses, and its largest free block. */
export interface NetworkPoolFree {
  readonly vlans: Count;
  /** IPv4 addresses of its prefixes (IPv6 prefixes are not counted). */
  readonly addresses: Count;
  /** The prefix length of its largest free IPv4 block; undefined when none is free. */
  readonly largestFreePrefixLength: number | undefined;
}

/** Servers of one machine class in one server pool (of one datacenter). */
export interface ServerCount extends Count {
  readonly pool: string;
  readonly datacenter: string;
  readonly machineClass: string;
}

/** What a datacenter offers: its network pools, the classes its servers are of, its storage. */
export interface DatacenterOffer {
  readonly networkPools: readonly { readonly name: string; readonly isDefault: boolean }[];
  readonly machineClasses: readonly string[];
  /** Object storage in bytes buckets may reserve (`objekt.storage_bytes`). */
  readonly objectStorageBytes: Count;
}

// The capacity buckets reserve (BUCKET_CAPACITY of controllers/bucket, which depends on this
// context, not the reverse).
const OBJECT_STORAGE = "objekt.storage_bytes";

const number = (v: unknown): number => Number(v ?? 0);

/**
 * What the catalog of the API shows of the physical inventory: what is free in each pool, live,
 * in a fixed number of statements whatever the number of pools (grouped counts, never a query
 * per pool). Nothing here says who holds what.
 */
export class CatalogReads extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.inventory);
  }

  /** Free VLANs and addresses of every network pool, by name, in three statements. */
  networkPools(): Promise<Map<string, NetworkPoolFree>> {
    return this.db.read(this.role, async (q) => {
      const vlanCounts = await q
        .select({
          pool: vlans.networkPool,
          total: count(),
          free: sql<number>`count(*) FILTER (WHERE ${vlans.ownerId} IS NULL)`.mapWith(number),
        })
        .from(vlans)
        .groupBy(vlans.networkPool);
      const totals = await q
        .select({
          pool: ipPools.networkPool,
          total: sql<number>`sum(1::bigint << (32 - masklen(${ipPools.cidr})))`.mapWith(number),
        })
        .from(ipPools)
        .where(sql`family(${ipPools.cidr}) = 4`)
        .groupBy(ipPools.networkPool);
      const free = await q
        .select({
          pool: ipBlocks.networkPool,
          free: sql<number>`sum(1::bigint << (32 - masklen(${ipBlocks.prefix})))`.mapWith(number),
          largest: sql<number>`min(masklen(${ipBlocks.prefix}))`.mapWith(number),
        })
        .from(ipBlocks)
        .where(and(isNull(ipBlocks.ownerId), sql`family(${ipBlocks.prefix}) = 4`))
        .groupBy(ipBlocks.networkPool);
      const pools = await q.select({ name: networkPools.name }).from(networkPools);
      const out = new Map<string, NetworkPoolFree>();
      for (const { name } of pools) {
        const v = vlanCounts.find((r) => r.pool === name);
        const f = free.find((r) => r.pool === name);
        out.set(name, {
          vlans: { total: number(v?.total), free: number(v?.free) },
          addresses: {
            total: number(totals.find((r) => r.pool === name)?.total),
            free: number(f?.free),
          },
          largestFreePrefixLength: f ? f.largest : undefined,
        });
      }
      return out;
    });
  }

  /** Servers by pool, datacenter and machine class, with how many are free: one statement. */
  servers(): Promise<ServerCount[]> {
    return this.db.read(this.role, (q) =>
      q
        .select({
          pool: servers.pool,
          datacenter: servers.datacenterId,
          machineClass: servers.machineClass,
          total: count(),
          free: sql<number>`count(*) FILTER (WHERE ${servers.ownerId} IS NULL)`.mapWith(number),
        })
        .from(servers)
        .groupBy(servers.pool, servers.datacenterId, servers.machineClass)
        .orderBy(asc(servers.pool), asc(servers.machineClass)),
    );
  }

  /** What every datacenter offers, by name, in four statements. */
  datacenters(): Promise<Map<string, DatacenterOffer>> {
    return this.db.read(this.role, async (q) => {
      const dcs = await q.select({ name: datacenters.name }).from(datacenters);
      const pools = await q
        .select({
          name: networkPools.name,
          isDefault: networkPools.isDefault,
          datacenter: networkPools.datacenterId,
        })
        .from(networkPools)
        .orderBy(asc(networkPools.name));
      const classes = await q
        .selectDistinct({ datacenter: servers.datacenterId, machineClass: servers.machineClass })
        .from(servers)
        .orderBy(asc(servers.machineClass));
      const storage = await q
        .select({
          datacenter: capacity.datacenterId,
          total: capacity.total,
          used: capacity.used,
        })
        .from(capacity)
        .where(eq(capacity.resource, OBJECT_STORAGE));
      return new Map(
        dcs.map(({ name }) => {
          const s = storage.find((r) => r.datacenter === name);
          return [
            name,
            {
              networkPools: pools
                .filter((p) => p.datacenter === name)
                .map((p) => ({ name: p.name, isDefault: p.isDefault })),
              machineClasses: classes
                .filter((c) => c.datacenter === name)
                .map((c) => c.machineClass),
              objectStorageBytes: {
                total: number(s?.total),
                free: number(s?.total) - number(s?.used),
              },
            },
          ];
        }),
      );
    });
  }
}
