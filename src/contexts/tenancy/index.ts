export {
  type Environment,
  type MetadataPatch,
  parseTenancyDeletion,
  type Project,
  TENANCY_CHANNEL,
  type TenancyDeletion,
  type Tenant,
  TenancyStore,
} from "./store.js";
