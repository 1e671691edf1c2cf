export {
  BucketSpec,
  ClusterSpec,
  line,
  lines,
  Name,
  NetworkSpec,
  type SpecOf,
  // A tenant's server; `ServerSpec` below is still a server as a ServerPool lists it.
  ServerSpec as TenantServerSpec,
  TENANT_KINDS,
  type TenantKind,
} from "./kinds.js";
export { formatPrefix, parsePrefix, type Prefix, PrefixError } from "./ipmath.js";
export { AllocationStore } from "./allocations.js";
export {
  CatalogReads,
  type Count,
  type DatacenterOffer,
  type NetworkPoolFree,
  type ServerCount,
} from "./catalog.js";
export {
  type Allocations,
  INTENT_CHANNEL,
  RESOURCE_CHANNEL,
  type Need,
  type Owner,
  type PoolUsage,
  RESOURCE_KINDS,
  type Resource,
  type ResourceKind,
  type Server,
  type ServerSpec,
  SHARD_SQL,
} from "./model.js";
export { InventoryStore, type NewResource } from "./store.js";
export { TopologyStore } from "./topology.js";
export {
  ANY_SCOPE,
  type Demand,
  demandDelta,
  demandOf,
  type QuotaDefinition,
  type QuotaLimit,
  type QuotaName,
  QUOTA_NAMES,
  QUOTAS,
  QuotaStore,
  type QuotaUse,
  type QuotaView,
} from "./quotas.js";
export { RESOURCE_CACHE_MAX, ResourceCache, type ResourceCacheDatabase } from "./resource-cache.js";
