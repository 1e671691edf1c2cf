export {
  type Environment,
  type MetadataPatch,
  type Project,
  type Tenant,
  TenancyStore,
} from "./store.js";
