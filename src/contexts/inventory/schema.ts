import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  cidr,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { timestamps, timestamptz, versionColumn } from "../../db/index.js";

/**
 * The inventory context: the resource graph (what tenants asked for), the physical inventory it
 * is built from (datacenters, server pools, servers, VLAN ranges, IP pools, capacity) and the
 * allocations between them. The strictest boundary: only this context writes these tables, and
 * nothing outside it holds a foreign key into them.
 */
export const inventory = pgSchema("inventory");

/** Who holds an allocation: a resource of the graph, by kind and id. */
const owner = () => ({
  ownerKind: text(),
  ownerId: uuid(),
  reservedAt: timestamptz(),
});

const ownerConsistent = (
  t: { ownerKind: unknown; ownerId: unknown; reservedAt: unknown },
  table: string,
) =>
  check(
    `${table}_owner_consistent`,
    sql`(${t.ownerKind} IS NULL) = (${t.ownerId} IS NULL) AND (${t.ownerId} IS NULL) = (${t.reservedAt} IS NULL)`,
  );

export const datacenters = inventory.table("datacenters", {
  name: text().primaryKey(),
  displayName: text().notNull().default(""),
  site: text().notNull(),
  failureDomain: text().notNull(),
  spec: jsonb().$type<Record<string, unknown>>().notNull().default({}),
  generation: bigint({ mode: "number" }).notNull().default(1),
  version: versionColumn(),
  ...timestamps(),
});

export const serverPools = inventory.table("server_pools", {
  name: text().primaryKey(),
  datacenterId: text()
    .notNull()
    .references(() => datacenters.name, { onDelete: "restrict" }),
  generation: bigint({ mode: "number" }).notNull().default(1),
  version: versionColumn(),
  ...timestamps(),
});

export const servers = inventory.table(
  "servers",
  {
    id: uuid().primaryKey(),
    pool: text()
      .notNull()
      .references(() => serverPools.name, { onDelete: "restrict" }),
    datacenterId: text().notNull(),
    name: text().notNull(),
    machineClass: text().notNull(),
    cpuCores: integer().notNull(),
    memoryMib: integer().notNull(),
    spec: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    ...owner(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    unique("servers_datacenter_name").on(t.datacenterId, t.name),
    ownerConsistent(t, "servers"),
    check("servers_size_positive", sql`${t.cpuCores} > 0 AND ${t.memoryMib} > 0`),
    index("servers_free")
      .on(t.pool, t.machineClass, t.name)
      .where(sql`${t.ownerId} IS NULL`),
    index("servers_owner").on(t.ownerId),
  ],
);

export const networkPools = inventory.table("network_pools", {
  name: text().primaryKey(),
  /** The pool networks of the datacenter use when they name none. */
  isDefault: boolean().notNull().default(false),
  datacenterId: text()
    .notNull()
    .references(() => datacenters.name, { onDelete: "restrict" }),
  generation: bigint({ mode: "number" }).notNull().default(1),
  version: versionColumn(),
  ...timestamps(),
});

/** A range of VLAN ids of a network pool; ranges of one datacenter never overlap (exclusion). */
export const vlanRanges = inventory.table(
  "vlan_ranges",
  {
    id: uuid().primaryKey(),
    networkPool: text()
      .notNull()
      .references(() => networkPools.name, { onDelete: "restrict" }),
    datacenterId: text().notNull(),
    first: integer().notNull(),
    last: integer().notNull(),
    createdAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [
    check(
      "vlan_ranges_bounds",
      sql`1 <= ${t.first} AND ${t.first} <= ${t.last} AND ${t.last} <= 4094`,
    ),
  ],
);

/**
 * One row per VLAN id of every range, so choosing a free one is a `SKIP LOCKED` row lock and a
 * VLAN id is unique per datacenter by primary key.
 */
export const vlans = inventory.table(
  "vlans",
  {
    datacenterId: text().notNull(),
    vlanId: integer().notNull(),
    rangeId: uuid()
      .notNull()
      .references(() => vlanRanges.id, { onDelete: "restrict" }),
    networkPool: text().notNull(),
    ...owner(),
  },
  (t) => [
    primaryKey({ name: "vlans_pkey", columns: [t.datacenterId, t.vlanId] }),
    ownerConsistent(t, "vlans"),
    check("vlans_id_range", sql`${t.vlanId} BETWEEN 1 AND 4094`),
    index("vlans_free")
      .on(t.networkPool, t.vlanId)
      .where(sql`${t.ownerId} IS NULL`),
    index("vlans_owner").on(t.ownerId),
  ],
);

/** An IP prefix a network pool hands out from; prefixes of one datacenter never overlap. */
export const ipPools = inventory.table("ip_pools", {
  id: uuid().primaryKey(),
  networkPool: text()
    .notNull()
    .references(() => networkPools.name, { onDelete: "restrict" }),
  datacenterId: text().notNull(),
  cidr: cidr().notNull(),
  createdAt: timestamptz().notNull().defaultNow(),
});

/**
 * The blocks an IP pool is divided into, free or allocated (a buddy system): the blocks of a
 * pool never overlap (exclusion constraint), so no two allocations can.
 */
export const ipBlocks = inventory.table(
  "ip_blocks",
  {
    id: uuid().primaryKey(),
    poolId: uuid()
      .notNull()
      .references(() => ipPools.id, { onDelete: "cascade" }),
    networkPool: text().notNull(),
    datacenterId: text().notNull(),
    prefix: cidr().notNull(),
    prefixLength: integer()
      .notNull()
      .generatedAlwaysAs(sql`masklen(prefix)`),
    ...owner(),
  },
  (t) => [
    ownerConsistent(t, "ip_blocks"),
    index("ip_blocks_free")
      .on(t.networkPool, t.prefixLength)
      .where(sql`${t.ownerId} IS NULL`),
    index("ip_blocks_owner").on(t.ownerId),
  ],
);

/** Finite capacity of a datacenter (`objekt.storage_bytes`, …); it never goes below zero. */
export const capacity = inventory.table(
  "capacity",
  {
    datacenterId: text().notNull(),
    resource: text().notNull(),
    total: bigint({ mode: "number" }).notNull(),
    used: bigint({ mode: "number" }).notNull().default(0),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    primaryKey({ name: "capacity_pkey", columns: [t.datacenterId, t.resource] }),
    check("capacity_used_nonnegative", sql`${t.used} >= 0`),
    check("capacity_available_nonnegative", sql`${t.total} - ${t.used} >= 0`),
  ],
);

/** What tenants asked for: networks, servers, clusters, buckets — spec, observed status, owner. */
export const resources = inventory.table(
  "resources",
  {
    id: uuid().primaryKey(),
    kind: text().notNull(),
    tenantId: uuid().notNull(),
    projectId: uuid().notNull(),
    environmentId: uuid().notNull(),
    datacenterId: text().notNull(),
    name: text().notNull(),
    labels: jsonb().$type<Record<string, string>>().notNull().default({}),
    spec: jsonb().$type<Record<string, unknown>>().notNull(),
    status: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    generation: bigint({ mode: "number" }).notNull().default(1),
    observedGeneration: bigint({ mode: "number" }).notNull().default(0),
    deletionRequestedAt: timestamptz(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    unique("resources_environment_kind_name").on(t.environmentId, t.kind, t.name),
    check("resources_kind", sql`${t.kind} IN ('network', 'server', 'cluster', 'bucket')`),
    index("resources_tenant").on(t.tenantId, t.kind, t.createdAt),
  ],
);

/** Capacity held by one owner, so reserving twice for the same owner is a no-op. */
export const capacityReservations = inventory.table(
  "capacity_reservations",
  {
    ownerKind: text().notNull(),
    ownerId: uuid().notNull(),
    datacenterId: text().notNull(),
    resource: text().notNull(),
    amount: bigint({ mode: "number" }).notNull(),
    reservedAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [
    primaryKey({
      name: "capacity_reservations_pkey",
      columns: [t.ownerId, t.datacenterId, t.resource],
    }),
    check("capacity_reservations_amount_positive", sql`${t.amount} > 0`),
  ],
);

/**
 * The platform's default limit of each tenant quota (from the `PlatformPolicy` in Git); a quota
 * without a row here has no default limit.
 */
export const quotaDefaults = inventory.table(
  "quota_defaults",
  {
    quota: text().primaryKey(),
    limit: bigint({ mode: "number" }).notNull(),
    /** The PlatformPolicy it came from. */
    policy: text().notNull(),
    updatedAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [check("quota_defaults_limit_nonnegative", sql`${t.limit} >= 0`)],
);

/**
 * An operator's limit for one tenant, replacing the default: for one scope (a datacenter, a
 * machine class, an environment) or for every scope (`*`).
 */
export const quotaOverrides = inventory.table(
  "quota_overrides",
  {
    tenantId: uuid().notNull(),
    quota: text().notNull(),
    scope: text().notNull(),
    limit: bigint({ mode: "number" }).notNull(),
    updatedAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ name: "quota_overrides_pkey", columns: [t.tenantId, t.quota, t.scope] }),
    check("quota_overrides_limit_nonnegative", sql`${t.limit} >= 0`),
  ],
);

/**
 * What each tenant has been granted of each quota and scope: charged in the transaction that
 * records a request (its row lock orders concurrent requests of one tenant, so they cannot
 * overshoot), refunded when the resource is gone.
 */
export const quotaUsage = inventory.table(
  "quota_usage",
  {
    tenantId: uuid().notNull(),
    quota: text().notNull(),
    scope: text().notNull(),
    used: bigint({ mode: "number" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "quota_usage_pkey", columns: [t.tenantId, t.quota, t.scope] }),
    check("quota_usage_used_nonnegative", sql`${t.used} >= 0`),
  ],
);
