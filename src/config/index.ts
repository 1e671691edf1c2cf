export { ConfigError, ConfigFileError, type ConfigProblem } from "./errors.js";
export { childEnvironment, type LoadConfigOptions, loadConfig, systemSearchPath } from "./load.js";
export { renderConfigReference } from "./reference.js";
export {
  type Config,
  ENV_BINDINGS,
  type EnvBinding,
  JWT_ALGORITHMS,
  LOG_LEVELS,
} from "./schema.js";
