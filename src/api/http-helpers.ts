import { createHash } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Principal } from "../auth/index.js";
import {
  IdempotencyKeyTakenError,
  type IdempotencyStore,
  type StoredResponse,
} from "../contexts/runtime/index.js";
import { requestTraceparent } from "../http/index.js";
import type { CallContext, TxHooks } from "./facade.js";
import { RequestError } from "./problems.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The verified caller; set by the authentication hook on every /api/v1 route. */
    principal?: Principal;
    /**
     * Resolves the id of the tenant a tenant role's token means (by id or by name, see
     * `ApiFacade.claimedTenantId`), afresh; undefined for operators and for tokens whose tenant
     * does not exist for them. Set by the authentication hook; called only where it matters
     * (the scope of an Idempotency-Key), so a read costs no lookup.
     */
    claimedTenantId?: () => Promise<string | undefined>;
  }
}

/** The call context of an authenticated request. */
export function callContext(request: FastifyRequest): CallContext {
  if (!request.principal) throw new Error("route reached without authentication");
  const traceparent = requestTraceparent(request);
  return {
    principal: request.principal,
    correlationId: request.id,
    ...(traceparent ? { traceparent } : {}),
  };
}

/**
 * The call context of an authenticated read: without the request's trace context, which only
 * the tasks and messages a change causes carry.
 */
export function readContext(request: FastifyRequest): CallContext {
  if (!request.principal) throw new Error("route reached without authentication");
  return { principal: request.principal, correlationId: request.id };
}

/** The strong ETag of a version. */
export const etag = (version: number): string => `"${version}"`;

/**
 * The request's `If-Match` header.
 *
 * @throws {RequestError} 428 `precondition-required` when it is missing or empty.
 */
export function requireIfMatch(request: FastifyRequest): string {
  const header = request.headers["if-match"];
  if (header === undefined || header === "") {
    throw new RequestError(
      428,
      "precondition-required",
      "If-Match is required",
      "send If-Match with the ETag of the version you read, so a concurrent change is not overwritten",
    );
  }
  return header;
}

/**
 * The version an `If-Match` header names.
 *
 * @throws {RequestError} 428 when it is missing, 400 when it is not one of our ETags.
 */
export function ifMatch(request: FastifyRequest): number {
  const header = requireIfMatch(request);
  // Only the strong ETags we give out: a weak one (W/"3") cannot guard a write (RFC 9110 13.1.1
  // compares strongly), and "03" is no ETag of ours even if it reads as 3.
  const match = /^"([1-9]\d{0,8})"$/.exec(header);
  if (!match?.[1]) {
    throw new RequestError(
      400,
      "invalid-request",
      "The request is not valid",
      'If-Match must be an ETag this API gave out, like "3"',
      {
        errors: [{ pointer: "/headers/if-match", message: 'an ETag like "3"' }],
      },
    );
  }
  return Number(match[1]);
}

/** A response ready to send and, when idempotent, to remember. */
export interface Rendered {
  readonly statusCode: number;
  readonly body: unknown;
  readonly location?: string;
  readonly etag?: string;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function send(reply: FastifyReply, rendered: Rendered, replayed: boolean): FastifyReply {
  if (rendered.location) void reply.header("location", rendered.location);
  if (rendered.etag) void reply.header("etag", rendered.etag);
  if (replayed) void reply.header("idempotent-replayed", "true");
  return reply.code(rendered.statusCode).send(rendered.body);
}

function replay(reply: FastifyReply, stored: StoredResponse, requestHash: string): FastifyReply {
  if (stored.requestHash !== requestHash) {
    throw new RequestError(
      422,
      "idempotency-key-reused",
      "The Idempotency-Key was used for another request",
      "this Idempotency-Key was already used with a different request; use a new key for a new request",
    );
  }
  return send(
    reply,
    {
      statusCode: stored.statusCode,
      body: stored.body,
      ...(stored.location ? { location: stored.location } : {}),
    },
    true,
  );
}

/**
 * Runs a POST once per `Idempotency-Key`: the key is claimed first and the response stored last in
 * the transaction of the change; a retry with the same key and body gets the first response back
 * (`Idempotent-Replayed: true`), with another body a 422. Without the header the POST just runs.
 */
export async function idempotent<R>(
  request: FastifyRequest,
  reply: FastifyReply,
  store: IdempotencyStore,
  ttlHours: number,
  run: (hooks: TxHooks<R> | undefined) => Promise<R>,
  render: (result: R) => Rendered,
): Promise<FastifyReply> {
  const key = request.headers["idempotency-key"];
  if (typeof key !== "string") return send(reply, render(await run(undefined)), false);
  const principal = request.principal;
  // Keys are a subject's within the tenant its token means, by id: a newcomer who took a deleted
  // tenant's name (and a subject's name in it) never gets the old tenant's responses back.
  const tenant =
    principal?.role === "operator" || principal?.tenant === undefined
      ? "*"
      : ((await request.claimedTenantId?.()) ?? `unresolved:${principal.tenant}`);
  const scope = `${principal?.subject ?? "-"}|${tenant}`;
  const requestHash = createHash("sha256")
    .update(`${request.method} ${request.url.split("?")[0] ?? ""}\n${canonical(request.body)}`)
    .digest("hex");
  const stored = await store.find(scope, key);
  if (stored) return replay(reply, stored, requestHash);
  try {
    const result = await run({
      begin: (tx) => store.claim(tx, { scope, key, requestHash, ttlHours }),
      end: async (tx, value) => {
        const rendered = render(value);
        await store.complete(tx, {
          scope,
          key,
          statusCode: rendered.statusCode,
          body: rendered.body,
          location: rendered.location ?? null,
        });
      },
    });
    return send(reply, render(result), false);
  } catch (err) {
    if (!(err instanceof IdempotencyKeyTakenError)) throw err;
    // A concurrent request with the same key won; answer with what it answered.
    const winner = await store.find(scope, key);
    if (!winner) throw err;
    return replay(reply, winner, requestHash);
  }
}
