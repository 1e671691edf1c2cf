// The inventory context's vocabulary: the kinds of tenant resources, who holds what, and the
// SQL the others share (the intent channel, the shard of an id).
import type { resources, servers } from "./schema.js";

/** The channel every change of tenant intent is announced on (`<kind>:<id>`), after commit. */
export const INTENT_CHANNEL = "dv_intent";

/**
 * The channel every change of a tenant resource's row is announced on by the table's triggers
 * (migration 0020): the ids changed, comma-separated, at most 200 to a notification, after commit.
 */
export const RESOURCE_CHANNEL = "dv_resource";

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

/** Something an owner needs reserved: a VLAN, or a prefix of a length, from a network pool. */
export type Need =
  | { readonly owner: Owner; readonly kind: "vlan"; readonly networkPool: string }
  | {
      readonly owner: Owner;
      readonly kind: "prefix";
      readonly networkPool: string;
      readonly prefixLength: number;
    };

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

/** Whether an owner holds nothing. */
export const holdsNothing = (a: Allocations): boolean =>
  a.vlans.length + a.prefixes.length + a.servers.length + a.capacity.length === 0;
