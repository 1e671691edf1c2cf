export {
  type CreateLoggerOptions,
  createLogger,
  type Logger,
  REDACT_PATHS,
  redactUrl,
} from "./logger.js";
export { createMetricsRegistry, metricOnce, type Registry } from "./metrics.js";
export {
  contextOf,
  failSpan,
  inSpan,
  type Span,
  SpanKind,
  type SpanOptions,
  startSpan,
  startTracing,
  traceparentOf,
  type Tracing,
  type TracingOptions,
} from "./tracing.js";
