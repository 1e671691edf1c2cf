export {
  API_VERSION,
  type CelRule,
  DatacenterSpec,
  GROUP,
  type KindDefinition,
  KINDS,
  kindOf,
  MachineClassSpec,
  NetworkPoolSpec,
  PlatformPolicySpec,
  RecoveryPolicySpec,
  ServerPoolSpec,
  STATUS_FIELDS,
  statusSchema,
  VERSION,
} from "./schemas.js";
export {
  crdFileName,
  customResourceDefinition,
  renderCustomResourceDefinitions,
} from "./render.js";
