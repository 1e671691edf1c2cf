export { formatPrefix, parsePrefix, type Prefix, PrefixError } from "./ipmath.js";
export {
  type Allocations,
  INTENT_CHANNEL,
  SHARD_SQL,
  InventoryStore,
  type Owner,
  type PoolUsage,
  RESOURCE_KINDS,
  type Resource,
  type ResourceKind,
  type Server,
  type ServerSpec,
} from "./store.js";
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
