export {
  type CreateLoggerOptions,
  createLogger,
  type Logger,
  REDACT_PATHS,
  redactUrl,
} from "./logger.js";
export { createMetricsRegistry, metricOnce, type Registry } from "./metrics.js";
