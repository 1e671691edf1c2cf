export { formatPrefix, parsePrefix, type Prefix, PrefixError } from "./ipmath.js";
export {
  type Allocations,
  INTENT_CHANNEL,
  InventoryStore,
  type Owner,
  type PoolUsage,
  RESOURCE_KINDS,
  type Resource,
  type ResourceKind,
  type Server,
  type ServerSpec,
} from "./store.js";
