import type {
  FastifyInstance,
  FastifyRequest,
  FastifySchemaCompiler,
  preValidationAsyncHookHandler,
  RouteOptions,
} from "fastify";
import { validatorCompiler as zodValidatorCompiler } from "fastify-type-provider-zod";
import type { OpenAPIV3_1 } from "openapi-types";
import type { z } from "zod";
import { requireIfMatch as requireIfMatchHeader } from "./http-helpers.js";
import { RequestError } from "./problems.js";
import { problemResponse } from "./routes/common.js";
import { Ref, REF_MAX_LENGTH, REF_PATTERN } from "./schemas.js";

/**
 * The HTTP layer of /api/v1 that no single route states but every route shares, kept in one
 * place so the served document says what the server does: JSON bodies only (a missing body is
 * the schema's to judge), 405 with `Allow` for a path without the method, 428 without a required
 * `If-Match`, and the problem responses each of these (and authentication, rate limits and the
 * database) can give, added to every route's documented responses.
 */

/** Methods whose requests Fastify reads a body of (and so may answer 413 or 415). */
const BODY_METHODS: ReadonlySet<string> = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Methods a path of ours may have, in the order `Allow` lists them. */
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Installs the HTTP layer on the /api/v1 instance: call it before the routes and before
 * `@fastify/swagger` (whose own `onRoute` hook must see the responses added here).
 */
export function registerProtocol(api: FastifyInstance): void {
  // Bodies are JSON: without the default text/plain parser, any other media type is a 415
  // `unsupported-media-type` instead of a string the schema refuses with a 400.
  api.removeContentTypeParser("text/plain");
  const parseJson = api.getDefaultJsonParser("error", "error");
  api.removeContentTypeParser("application/json");
  api.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    const text = body as string;
    // No body at all: the route's schema decides (a default like `{}`, or a 400 at /body).
    if (text.length === 0) {
      done(null, undefined);
      return;
    }
    // Fastify's own parser (with its prototype-poisoning guard); it answers through `done`.
    void parseJson(request, text, (err, value) => {
      if (err) done(invalidJson(text));
      // Fastify validates a missing body as `null`; a literal `null` must not pass for one.
      else if (value === null) done(bodyProblem("the body is JSON null; send an object"));
      else done(null, value);
    });
  });
  api.addHook("onRoute", documentProtocol);
}

/** A 400 naming what is wrong with a body that is not JSON (or has a prototype-poisoning key). */
function invalidJson(text: string): RequestError {
  try {
    JSON.parse(text);
    return bodyProblem("a `__proto__` or `constructor.prototype` key is refused");
  } catch (err) {
    return bodyProblem(`not valid JSON: ${(err as Error).message}`);
  }
}

function bodyProblem(message: string): RequestError {
  return new RequestError(400, "invalid-request", "The request is not valid", `/body: ${message}`, {
    errors: [{ pointer: "/body", message }],
  });
}

/**
 * fastify-type-provider-zod's validator, except that a request without a body is validated as
 * `undefined` (Fastify hands validators `null` for it), so a body schema's default applies: a
 * `POST …/cancel` without a body is a cancel with the default reason. (A JSON `null` body is
 * refused by the parser above, so it cannot pass for a missing one.)
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = (route) => {
  const validate = zodValidatorCompiler(route);
  if (route.httpPart === "body") return (data) => validate(data ?? undefined);
  const refs = route.httpPart === "params" ? refsOnly(route.schema) : undefined;
  if (refs === undefined) return validate;
  // Path parameters that are all refs: those that are (every request of a well-formed client)
  // are taken as zod would take them, at a fraction of its cost; anything else is zod's to judge
  // and to explain.
  return (data) => {
    const params = data as Record<string, unknown> | null;
    if (params === null || typeof params !== "object") return validate(data);
    const value: Record<string, string> = {};
    let count = 0;
    for (const key in params) {
      count++;
      const ref = params[key];
      if (
        !refs.has(key) ||
        typeof ref !== "string" ||
        ref.length === 0 ||
        ref.length > REF_MAX_LENGTH ||
        !REF_PATTERN.test(ref)
      ) {
        return validate(data);
      }
      value[key] = ref;
    }
    return count === refs.size ? { value } : validate(data);
  };
};

/**
 * The keys of a params schema that is a plain object of {@link Ref}s (no refinement of its own,
 * unknown keys refused or stripped), else undefined.
 */
function refsOnly(schema: unknown): ReadonlySet<string> | undefined {
  const def = (schema as z.ZodType | undefined)?._zod.def as
    | { type: string; shape?: Record<string, unknown>; checks?: unknown[]; catchall?: z.ZodType }
    | undefined;
  if (def?.type !== "object" || !def.shape || (def.checks?.length ?? 0) > 0) return undefined;
  if (def.catchall !== undefined && def.catchall._zod.def.type !== "never") return undefined;
  const keys = Object.keys(def.shape);
  if (keys.length === 0 || keys.some((key) => def.shape?.[key] !== Ref)) return undefined;
  return new Set(keys);
}

/**
 * The methods `url` has routes for: what `Allow` lists when a request's method is not one of
 * them. Empty when no route has the path at all.
 */
export function allowedMethods(api: FastifyInstance, url: string): string[] {
  return METHODS.filter((method) => api.findRoute({ method, url }) !== null);
}

/**
 * What a request no route matches gets: 405 `method-not-allowed` with `Allow` when its path has
 * routes for other methods (RFC 9110 §15.5.6), else 404 `not-found`.
 */
export function unrouted(api: FastifyInstance, request: FastifyRequest): RequestError {
  const path = request.url.split("?")[0] ?? "";
  const allow = allowedMethods(api, request.url);
  if (allow.length > 0) {
    return new RequestError(
      405,
      "method-not-allowed",
      "Method not allowed",
      `${path} answers ${allow.join(", ")}, not ${request.method}`,
      { headers: { allow: allow.join(", ") } },
    );
  }
  return new RequestError(404, "not-found", "Not found", `no route ${request.method} ${path}`);
}

/** 428 `precondition-required` for a request without `If-Match`, before it is validated. */
export const requireIfMatch: preValidationAsyncHookHandler = async (request: FastifyRequest) => {
  requireIfMatchHeader(request);
};

function asArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function hasKey(schema: unknown, key: string): boolean {
  const shape = (schema as { shape?: Record<string, unknown> } | undefined)?.shape;
  return shape !== undefined && key in shape;
}

/**
 * `onRoute`: adds to a route's responses the problems the HTTP layer gives it — 401 and 429 on
 * every authenticated route (authentication and the rate limit run before it), 431 for headers
 * over the server's limit, 503 when the database cannot serve it, 400 when it validates
 * anything, 413 and 415 when a body can be sent, 428 (and the check that answers it) when it
 * takes `If-Match`. Public routes are left alone.
 */
export function documentProtocol(route: RouteOptions): void {
  const schema = route.schema as (Record<string, unknown> & { hide?: boolean }) | undefined;
  const config = route.config as { public?: boolean } | undefined;
  if (!schema || schema.hide || config?.public) return;
  // 431: Node's HTTP parser refuses a request line and headers over its limit, whatever the route.
  const statuses = [401, 429, 431, 503];
  if (schema.params || schema.querystring || schema.headers || schema.body) statuses.push(400);
  // Fastify reads a body sent with any of these methods, whether the route wants one or not.
  const methods = asArray(route.method).map((m) => m.toUpperCase());
  if (schema.body || methods.some((m) => BODY_METHODS.has(m))) statuses.push(413, 415);
  if (hasKey(schema.headers, "if-match")) {
    statuses.push(428);
    route.preValidation = [requireIfMatch, ...asArray(route.preValidation)] as NonNullable<
      RouteOptions["preValidation"]
    >;
  }
  const response = { ...((schema.response as Record<string, unknown> | undefined) ?? {}) };
  for (const status of statuses) response[status] ??= problemResponse(status);
  route.schema = { ...schema, response };
}

/**
 * Finishes the OpenAPI document: a request body whose schema has a default (`{}`) may be left
 * out, which `@fastify/swagger` cannot say (it marks every body required).
 */
export function finishDocument(document: OpenAPIV3_1.Document): OpenAPIV3_1.Document {
  const schemas = document.components?.schemas ?? {};
  const resolve = (schema: unknown): Record<string, unknown> | undefined => {
    const ref = (schema as { $ref?: unknown } | undefined)?.$ref;
    if (typeof ref === "string") return schemas[ref.split("/").pop() ?? ""] as never;
    return schema as Record<string, unknown> | undefined;
  };
  for (const methods of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(methods ?? {})) {
      const body = (operation as OpenAPIV3_1.OperationObject | undefined)?.requestBody as
        OpenAPIV3_1.RequestBodyObject | undefined;
      const json = body?.content["application/json"]?.schema;
      if (body && resolve(json)?.default !== undefined) body.required = false;
    }
  }
  return document;
}
