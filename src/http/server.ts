import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from "fastify";
import { maxHeaderSize } from "node:http";
import { Histogram } from "prom-client";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import {
  failSpan,
  type Logger,
  type Registry,
  type Span,
  SpanKind,
  startSpan,
  traceparentOf,
} from "../observability/index.js";
import { PROBLEM_MEDIA_TYPE, problem, writeClientError } from "./problem.js";
import { newRequestId } from "./request-id.js";
import { requestLogger } from "./request-log.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's server span: its `traceparent` is what the request's work continues. */
    span?: Span;
  }
}

/** Probes and scrapes every few seconds would drown the log and the traces. */
const QUIET = new Set(["/healthz", "/readyz", "/metrics"]);

/** A caller's X-Correlation-Id is taken when it is this sane. */
const CORRELATION_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The W3C `traceparent` of a request's span, for the work it causes (none when untraced). */
export function requestTraceparent(request: { span?: Span }): string | undefined {
  return request.span ? traceparentOf(request.span) : undefined;
}

/** Options of {@link createHttpServer}. */
export interface CreateHttpServerOptions {
  readonly log: Logger;
  readonly metrics: Registry;
  readonly bodyLimitBytes: number;
}

/**
 * Creates the Fastify instance of a process with its logger and a request-duration histogram
 * (`dataverket_http_request_duration_seconds{method,route,status}`). Request logs carry method,
 * URL, status and time, never bodies or headers.
 */
export function createHttpServer(options: CreateHttpServerOptions): FastifyInstance {
  const app = Fastify({
    // pino 10 and the pino types fastify was built against differ only in fields fastify never reads;
    // without the assertion Fastify() infers a logger type its own FastifyInstance rejects.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: options.log.child(
      { component: "http" },
      { serializers: { req: requestForLog } },
    ) as FastifyBaseLogger,
    bodyLimit: options.bodyLimitBytes,
    return503OnClosing: true,
    // The correlation id of a request: the caller's X-Correlation-Id when it is sane, else a new
    // time-ordered id; logged as correlation_id and echoed in the response.
    genReqId: (request) => {
      const given = request.headers["x-correlation-id"];
      return typeof given === "string" && CORRELATION_ID.test(given) ? given : newRequestId();
    },
    childLoggerFactory: requestLogger,
    // One access line per request, when it is answered (the onResponse hook below), instead of
    // Fastify's two (`incoming request` and `request completed`).
    logController: new LogController({
      requestIdLogLabel: "correlation_id",
      disableRequestLogging: true,
    }),
    forceCloseConnections: "idle",
    // Requests refused before routing answer problem+json like every other error (Fastify's own
    // answers are `{"error": …}` as application/json): headers over Node's limit (431) …
    clientErrorHandler: (err, socket) => writeClientError(err, socket, maxHeaderSize),
    // … and a path that is not valid percent-encoding, or a path segment over the router's
    // 100 characters (no path parameter of ours is longer than 63).
    frameworkErrors: (err, request, reply) => {
      const body = {
        ...problem(
          400,
          "invalid-request",
          "The request is not valid",
          err.code === "FST_ERR_MAX_PARAM_LENGTH"
            ? "a path segment is too long"
            : "the path is not valid percent-encoded UTF-8",
        ),
        instance: request.url.split("?")[0] ?? "",
        correlationId: request.id,
      };
      void (reply as FastifyReply)
        .code(400)
        .header("x-correlation-id", request.id)
        .type(PROBLEM_MEDIA_TYPE)
        .send(JSON.stringify(body));
    },
  });
  // Declared up front, so every request object has the same shape (Fastify's advice).
  app.decorateRequest("span", undefined);
  const duration = new Histogram({
    name: "dataverket_http_request_duration_seconds",
    help: "HTTP request duration by method, route template and status code",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [options.metrics],
  });
  // Hooks that finish at once call `done` rather than return a promise: a promise per hook and
  // request is a measurable share of answering a cached read.
  app.addHook("onRequest", (request, reply, done) => {
    void reply.header("x-correlation-id", request.id);
    if (!QUIET.has(request.url)) {
      // A gateway's traceparent makes this request part of the caller's trace.
      const given = request.headers.traceparent;
      const route = request.routeOptions.url ?? "unmatched";
      request.span = startSpan(`${request.method} ${route}`, {
        kind: SpanKind.SERVER,
        parent: typeof given === "string" ? given : null,
        attributes: {
          "http.request.method": request.method,
          "http.route": route,
          "url.path": request.url.split("?")[0] ?? "",
          "dataverket.correlation_id": request.id,
        },
      });
    }
    done();
  });
  app.addHook("onError", async (request, _reply, err) => {
    if (request.span) failSpan(request.span, err);
  });
  app.addHook("onResponse", (request, reply, done) => {
    const span = request.span;
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      span.end();
    }
    const elapsedMs = reply.elapsedTime;
    duration.observe(
      {
        method: request.method,
        // The route template, never the raw URL: ids in paths would explode label cardinality.
        route: request.routeOptions.url ?? "unmatched",
        status: String(reply.statusCode),
      },
      elapsedMs / 1000,
    );
    if (!QUIET.has(request.url))
      request.log.info({ req: request, res: reply, responseTime: elapsedMs }, "request completed");
    done();
  });
  return app;
}

/**
 * Starts listening.
 *
 * @throws {StartupError} `DV_PORT_IN_USE` naming the port and the variable that sets it.
 */
export async function listenHttp(
  app: FastifyInstance,
  host: string,
  port: number,
  source = "DV_HTTP_PORT",
): Promise<string> {
  try {
    return await app.listen({ host, port });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES") {
      throw new StartupError(
        StartupErrorCode.PortInUse,
        `port ${port} (${source}) on ${host} is ${code === "EACCES" ? "not allowed" : "already in use"}`,
        `stop what uses it or set ${source} to another port`,
        { cause: err },
      );
    }
    throw err;
  }
}

/**
 * What a request log line says about the request: method, path, and the names of its query
 * parameters with their values hidden (a cursor, a selector or a misplaced token may be
 * sensitive); never headers or body.
 */
export function requestForLog(request: {
  method?: string;
  url?: string;
  ip?: string;
}): Record<string, unknown> {
  const url = request.url ?? "";
  const q = url.indexOf("?");
  const path = q < 0 ? url : url.slice(0, q);
  const names = q < 0 ? [] : [...new URLSearchParams(url.slice(q + 1)).keys()];
  return {
    method: request.method,
    url: names.length === 0 ? path : `${path}?${names.map((n) => `${n}=…`).join("&")}`,
    ...(request.ip ? { remoteAddress: request.ip } : {}),
  };
}
