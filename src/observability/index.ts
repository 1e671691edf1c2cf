export {
  type CreateLoggerOptions,
  createLogger,
  type Logger,
  REDACT_PATHS,
  redactUrl,
} from "./logger.js";
export { createMetricsRegistry, type Registry } from "./metrics.js";
