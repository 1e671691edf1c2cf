import type { FastifyInstance, RawServerDefault } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { FastifyBaseLogger } from "fastify";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Cursors } from "../cursors.js";
import type { ApiFacade } from "../facade.js";
import { PROBLEM_MEDIA_TYPE } from "../../http/index.js";
import { Problem } from "../schemas.js";
import type { TaskWatcher } from "../task-watcher.js";

/** A Fastify instance whose route schemas are zod schemas. */
export type ZodApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What every route module needs. */
export interface RouteDeps {
  readonly facade: ApiFacade;
  readonly watcher: TaskWatcher;
  readonly idempotencyTtlHours: number;
  /** Signs and checks the lists' cursors. */
  readonly cursors: Cursors;
}

/** What a problem status means, for the document; the types are in docs/api.md. */
const PROBLEM_STATUSES: Readonly<Record<number, string>> = {
  400: "`invalid-request`: a path parameter, query parameter, header or body does not fit its schema, or the body is not JSON; `errors` points at each field",
  401: "`unauthorized`: no bearer token, or one that is malformed, forged, expired, or for another issuer or audience",
  403: "`forbidden`: the token's role may not do this",
  404: "`not-found`: it does not exist, or is not the caller's",
  409: "It conflicts with the current state: `already-exists`, `in-use`, `invalid-state`, `pool-exhausted`, `capacity-exhausted`, `quota-exceeded` or `overlap`",
  412: "`precondition-failed`: If-Match names an older version; GET it for the current ETag",
  413: "`payload-too-large`: the body is over the server's limit",
  415: "`unsupported-media-type`: the body is not `application/json`",
  422: "`idempotency-key-reused`: the Idempotency-Key was used with another request; or `invalid-reference`: the body names what the platform does not have",
  428: "`precondition-required`: If-Match is missing",
  429: "`rate-limited`: over the rate limit; retry after `Retry-After` seconds",
  431: "`request-header-fields-too-large`: the request line and headers are over the server's limit (16 KiB)",
  503: "The database cannot serve it now (`database-unavailable`, `database-busy`, `database-read-only`, `backup-failed`); retry after `Retry-After` seconds",
};

/** A problem response of the document: RFC 9457 as `application/problem+json`. */
export function problemResponse(status: number): {
  description: string;
  content: { "application/problem+json": { schema: typeof Problem } };
} {
  return {
    description: PROBLEM_STATUSES[status] ?? "A problem",
    content: { [PROBLEM_MEDIA_TYPE]: { schema: Problem } },
  };
}

/**
 * Problem responses a route gives beyond those of the HTTP layer (400, 401, 413, 415, 428,
 * 429, 431 and 503 are added to every route they apply to by `registerProtocol`), for the OpenAPI
 * document.
 */
export function problems(
  ...statuses: number[]
): Record<number, ReturnType<typeof problemResponse>> {
  return Object.fromEntries(statuses.map((s) => [s, problemResponse(s)]));
}
