import {
  type Attributes,
  type Context,
  context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import type { Logger } from "./logger.js";

export { SpanKind } from "@opentelemetry/api";
export type { Span } from "@opentelemetry/api";

const TRACER = "dataverket";

// Trace context travels in messages and rows whether or not spans are exported, so it does not
// go through the global propagator (a no-op until a provider registers one).
const w3c = new W3CTraceContextPropagator();

/** Options of {@link startTracing}. */
export interface TracingOptions {
  /** The OTLP/HTTP endpoint (`http://collector:4318`); traces go to its `/v1/traces`. */
  readonly endpoint: string;
  /** `service.name` of the spans: `dataverket-api`, `dataverket-worker-nett`, … */
  readonly serviceName: string;
  readonly serviceVersion: string;
  readonly datacenterId: string;
  /** Share of new traces kept, 0 to 1; a trace begun elsewhere keeps its caller's decision. */
  readonly sampleRatio: number;
  readonly log: Logger;
}

/** A started tracing pipeline: {@link shutdown} exports what is buffered, then stops. */
export interface Tracing {
  shutdown(): Promise<void>;
}

/**
 * Sends this process's spans to an OTLP endpoint: registers the global tracer provider (with
 * W3C trace-context propagation and async-hooks context), batched export over OTLP/HTTP
 * (protobuf), parent-based ratio sampling. Without it, every span is a no-op that still carries
 * its parent's trace context from message to message.
 */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  // The SDK is loaded only when spans are exported: a process without an endpoint never pays
  // for it at start-up.
  const [{ OTLPTraceExporter }, { resourceFromAttributes }, sdk, semconv] = await Promise.all([
    import("@opentelemetry/exporter-trace-otlp-proto"),
    import("@opentelemetry/resources"),
    import("@opentelemetry/sdk-trace-node"),
    import("@opentelemetry/semantic-conventions"),
  ]);
  const { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, TraceIdRatioBasedSampler } =
    sdk;
  const { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } = semconv;
  const url = new URL(
    "v1/traces",
    options.endpoint.endsWith("/") ? options.endpoint : `${options.endpoint}/`,
  );
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion,
      "dataverket.datacenter_id": options.datacenterId,
    }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.sampleRatio) }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: url.toString() }), {
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  provider.register();
  options.log.info({ endpoint: url.origin, service_name: options.serviceName }, "tracing to OTLP");
  return {
    async shutdown() {
      try {
        await provider.shutdown();
      } catch (err) {
        options.log.warn({ err }, "could not export the last spans");
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
}

/** The context a W3C `traceparent` (from a header or a stored message) names, or none. */
export function contextOf(traceparent: string | null | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return w3c.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
}

/**
 * The W3C `traceparent` of `span`, to carry in a message or a stored row so that what it causes
 * continues the trace. Without tracing, a span carries its parent's; without either, none.
 */
export function traceparentOf(span: Span): string | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
  return carrier.traceparent;
}

/** Options of {@link startSpan} and {@link inSpan}. */
export interface SpanOptions {
  readonly kind?: SpanKind;
  /** The parent: a `traceparent`, or a context; the active context when absent. */
  readonly parent?: string | null | Context | undefined;
  readonly attributes?: Attributes;
}

function parentContext(parent: SpanOptions["parent"]): Context {
  if (parent === undefined) return context.active();
  return typeof parent === "string" || parent === null ? contextOf(parent) : parent;
}

/** Starts a span; the caller ends it. */
export function startSpan(name: string, options: SpanOptions = {}): Span {
  return trace.getTracer(TRACER).startSpan(
    name,
    {
      kind: options.kind ?? SpanKind.INTERNAL,
      ...(options.attributes ? { attributes: options.attributes } : {}),
    },
    parentContext(options.parent),
  );
}

/** Marks `span` failed with `err` (its message, never a stack of secrets) and ends it. */
export function failSpan(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: err instanceof Error ? err.message : String(err),
  });
}

/**
 * Runs `fn` in a new span that is the active one inside it, ending it after; a throw marks the
 * span failed and passes on.
 */
export async function inSpan<T>(
  name: string,
  options: SpanOptions,
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const span = startSpan(name, options);
  try {
    return await context.with(trace.setSpan(parentContext(options.parent), span), () => fn(span));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}
