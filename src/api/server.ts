import swagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import type { OpenAPIV3_1 } from "openapi-types";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import { Counter, type Registry } from "prom-client";
import type { TokenVerifier } from "../auth/index.js";
import { Cursors } from "./cursors.js";
import type { ApiFacade } from "./facade.js";
import { RequestError, toProblem } from "./problems.js";
import { finishDocument, registerProtocol, unrouted, validatorCompiler } from "./protocol.js";
import { addressKey, RateLimiter } from "./rate-limit.js";
import { registerCatalogRoutes } from "./routes/catalog.js";
import type { RouteDeps, ZodApp } from "./routes/common.js";
import { registerDatabaseRoutes } from "./routes/database.js";
import { registerQuotaRoutes } from "./routes/quotas.js";
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
  /**
   * The key that signs list cursors, shared by every replica (`runtime.signing_keys`); a key of
   * this process only when absent (the OpenAPI document, built without a database).
   */
  readonly cursorKey?: Uint8Array;
}

/** The version of the public API document. */
const info = {
  title: "Dataverket API",
  version: "1.0.0",
  description:
    "Tenant self-service for projects, environments, networks, servers, clusters and buckets. The catalog (datacenters, machine classes, network and server pools) says what a request may name and what is free. Every long operation is a task to poll or follow. Errors are RFC 9457 problems.",
  "x-generated":
    "Generated from the zod schemas in src/api by `npm run generate`; do not edit docs/api/openapi.json by hand.",
};

/** The version of the public API document. */
export const API_VERSION = "1.0.0";

const OPENAPI_PATH = "/openapi.json";

/** How long a token's tenant name is taken as resolved for its rate-limit budget. */
const CLAIM_CACHE_MS = 5_000;

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

      // 404, or 405 with Allow for a path that has other methods. (Answered already by the
      // onRequest hook below, before any body is parsed; this is where Fastify sends them.)
      api.setNotFoundHandler((request) => {
        throw unrouted(api, request);
      });
      registerProtocol(api);

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
        transformObject: (document) =>
          finishDocument(jsonSchemaTransformObject(document) as OpenAPIV3_1.Document),
      });

      // Declared up front, so every request object has the same shape (Fastify's advice).
      api.decorateRequest("principal", undefined);
      api.decorateRequest("claimedTenantId", undefined);

      const limiter = new RateLimiter(options.rateLimit);
      const take = (key: string): void => {
        const decision = limiter.take(key);
        if (decision.allowed) return;
        throw new RequestError(
          429,
          "rate-limited",
          "Too many requests",
          `more than ${limiter.max} requests in ${limiter.windowMs} ms; retry after the Retry-After seconds`,
          {
            headers: {
              "retry-after": String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))),
            },
          },
        );
      };

      // Authentication and rate limits first (onRequest; a route's own hooks run after the
      // instance's): every request counts — one that fails authentication, validation or a
      // lookup (401, 400, 404) too — and one over its budget is refused before its body is read.
      // Budgets are per tenant, by the tenant's id whether a token names it by id or by name, so
      // one tenant cannot starve another nor double its own; operators per subject. A request
      // without a token this process already verified is charged to the client's address before
      // its signature is checked, so a flood of missing or forged tokens is refused by address
      // without a signature check each; so is a token whose tenant does not exist for it.
      api.addHook("onRequest", async (request) => {
        if ((request.routeOptions.config as { public?: boolean } | undefined)?.public) return;
        const authorization = request.headers.authorization;
        let principal = options.verifier.known(authorization);
        const charged = principal === undefined;
        if (principal === undefined) {
          take(addressKey(request.ip));
          principal = await options.verifier.verify(authorization);
        }
        request.principal = principal;
        if (principal.role === "operator") {
          take(`operator:${principal.subject}`);
          return;
        }
        // The budget's key may be a few seconds stale (no query per request); what a request
        // may see or do, and its Idempotency-Key scope, are resolved afresh.
        const tenantId = await options.facade.claimedTenantId(principal, {
          maxAgeMs: CLAIM_CACHE_MS,
        });
        const claimant = principal;
        request.claimedTenantId = () => options.facade.claimedTenantId(claimant);
        if (tenantId !== undefined) {
          take(`tenant:${tenantId}`);
        } else if (!charged) {
          take(addressKey(request.ip));
        }
      });

      api.get(OPENAPI_PATH, { config: { public: true }, schema: { hide: true } }, async () =>
        api.swagger(),
      );

      // A request no route matches is answered once it is authenticated and counted, before its
      // body is parsed: a body (or a QUERY without Content-Type) must not turn a 405 into a 400.
      api.addHook("onRequest", (request, _reply, done) => {
        if (request.is404) throw unrouted(api, request);
        done();
      });

      const deps: RouteDeps = {
        facade: options.facade,
        watcher: options.watcher,
        idempotencyTtlHours: options.idempotencyTtlHours,
        cursors: options.cursorKey ? new Cursors(options.cursorKey) : Cursors.random(),
      };
      registerTenancyRoutes(zapi, deps);
      registerResourceRoutes(zapi, deps);
      registerTaskRoutes(zapi, deps);
      registerDeadLetterRoutes(zapi, deps);
      registerLeaseRoutes(zapi, deps);
      registerDatabaseRoutes(zapi, deps);
      registerQuotaRoutes(zapi, deps);
      registerCatalogRoutes(zapi, deps);
    },
    { prefix: "/api/v1" },
  );
}

/** The OpenAPI document of /api/v1 as the running API serves it. */
export async function openApiDocument(app: FastifyInstance): Promise<unknown> {
  const response = await app.inject({ method: "GET", url: `/api/v1${OPENAPI_PATH}` });
  return response.json();
}
