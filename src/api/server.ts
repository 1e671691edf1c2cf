import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { Counter, type Registry } from "prom-client";
import type { TokenVerifier } from "../auth/index.js";
import type { ApiFacade } from "./facade.js";
import { RequestError, toProblem } from "./problems.js";
import type { RouteDeps, ZodApp } from "./routes/common.js";
import { registerDatabaseRoutes } from "./routes/database.js";
import { registerDeadLetterRoutes } from "./routes/dead-letters.js";
import { registerLeaseRoutes } from "./routes/leases.js";
import { registerResourceRoutes } from "./routes/resources.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { registerTenancyRoutes } from "./routes/tenancy.js";
import type { TaskWatcher } from "./task-watcher.js";

/** Options of {@link registerApi}. */
export interface ApiOptions {
  readonly facade: ApiFacade;
  readonly verifier: TokenVerifier;
  readonly watcher: TaskWatcher;
  readonly metrics: Registry;
  readonly rateLimit: { readonly max: number; readonly windowMs: number };
  readonly idempotencyTtlHours: number;
}

/** The version of the public API document. */
const info = {
  title: "Dataverket API",
  version: "1.0.0",
  description:
    "Tenant self-service for projects, environments, networks, servers, clusters and buckets. Every long operation is a task to poll or follow. Errors are RFC 9457 problems.",
  "x-generated":
    "Generated from the zod schemas in src/api by `npm run generate`; do not edit docs/api/openapi.json by hand.",
};

/** The version of the public API document. */
export const API_VERSION = "1.0.0";

const OPENAPI_PATH = "/openapi.json";

/**
 * Registers `/api/v1` on `app`: bearer authentication on every route but the OpenAPI document,
 * per-tenant rate limits, zod validation of every request (unknown body fields are a 400),
 * responses serialised through the same schemas, and RFC 9457 problems for every error.
 */
export async function registerApi(app: FastifyInstance, options: ApiOptions): Promise<void> {
  const problemsTotal = new Counter({
    name: "dataverket_api_problems_total",
    help: "Problem responses of /api/v1 by status and problem type",
    labelNames: ["status", "type"] as const,
    registers: [options.metrics],
  });

  await app.register(
    async (api) => {
      const zapi = api.withTypeProvider<ZodTypeProvider>() as unknown as ZodApp;
      api.setValidatorCompiler(validatorCompiler);
      api.setSerializerCompiler(serializerCompiler);

      api.setErrorHandler((err, request, reply) => {
        const { body, headers, expected } = toProblem(err);
        if (!expected) request.log.error({ err }, "request failed");
        problemsTotal.inc({ status: String(body.status), type: body.type.split("/").pop() ?? "" });
        void reply.headers(headers);
        return reply
          .code(body.status)
          .type("application/problem+json")
          .serializer((payload) => JSON.stringify(payload))
          .send({ ...body, instance: request.url.split("?")[0], correlationId: request.id });
      });

      api.setNotFoundHandler((request) => {
        throw new RequestError(
          404,
          "not-found",
          "Not found",
          `no route ${request.method} ${request.url.split("?")[0] ?? ""}`,
        );
      });

      await api.register(swagger, {
        openapi: {
          openapi: "3.1.0",
          info,
          servers: [{ url: "/api/v1" }],
          components: {
            securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } },
          },
          security: [{ bearer: [] }],
        },
        transform: jsonSchemaTransform,
        transformObject: jsonSchemaTransformObject,
      });

      // Authentication first (onRequest), so unauthenticated requests cost nothing more.
      api.addHook("onRequest", async (request) => {
        if ((request.routeOptions.config as { public?: boolean } | undefined)?.public) return;
        request.principal = await options.verifier.verify(request.headers.authorization);
      });

      await api.register(rateLimit, {
        global: true,
        // onRequest, right after authentication (a route's own hooks run after the instance's):
        // every request counts, also one that would fail validation, and one over the limit is
        // refused before its body is parsed. (In preHandler, after validation, a tenant could
        // send requests with bad bodies or queries at any rate.)
        hook: "onRequest",
        max: options.rateLimit.max,
        timeWindow: options.rateLimit.windowMs,
        // Per tenant, so one tenant cannot starve another; operators per subject.
        keyGenerator: (request) => {
          const p = request.principal;
          if (!p) return `ip:${request.ip}`;
          return p.role === "operator" ? `operator:${p.subject}` : `tenant:${p.tenant ?? ""}`;
        },
        errorResponseBuilder: (_request, context) =>
          new RequestError(
            429,
            "rate-limited",
            "Too many requests",
            `more than ${context.max} requests in ${context.after}; retry after the Retry-After seconds`,
            { headers: { "retry-after": String(Math.max(1, Math.ceil(context.ttl / 1000))) } },
          ),
      });

      api.get(
        OPENAPI_PATH,
        { config: { public: true, rateLimit: false }, schema: { hide: true } },
        async () => api.swagger(),
      );

      const deps: RouteDeps = {
        facade: options.facade,
        watcher: options.watcher,
        idempotencyTtlHours: options.idempotencyTtlHours,
      };
      registerTenancyRoutes(zapi, deps);
      registerResourceRoutes(zapi, deps);
      registerTaskRoutes(zapi, deps);
      registerDeadLetterRoutes(zapi, deps);
      registerLeaseRoutes(zapi, deps);
      registerDatabaseRoutes(zapi, deps);
    },
    { prefix: "/api/v1" },
  );
}

/** The OpenAPI document of /api/v1 as the running API serves it. */
export async function openApiDocument(app: FastifyInstance): Promise<unknown> {
  const response = await app.inject({ method: "GET", url: `/api/v1${OPENAPI_PATH}` });
  return response.json();
}
