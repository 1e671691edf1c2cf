import {
  hasZodFastifySchemaValidationErrors,
  isResponseSerializationError,
} from "fastify-type-provider-zod";
import { AuthenticationError, ForbiddenError } from "../auth/index.js";
import {
  BackupError,
  BackupErrorCode,
  isDatabaseUnavailable,
  isPoolTimeout,
  sqlStateOf,
} from "../db/index.js";
import { PROBLEM_BASE, type ProblemBody, problem } from "../http/index.js";
import {
  AlreadyExistsError,
  CapacityExhaustedError,
  InvalidReferenceError,
  InUseError,
  InvalidTransitionError,
  LabelSelectorError,
  NotFoundError,
  OverlapError,
  PoolExhaustedError,
  QuotaExceededError,
  VersionConflictError,
} from "../kernel/index.js";

export { PROBLEM_BASE, type ProblemBody };

/** Thrown by handlers for request problems the schemas cannot express (a bad cursor, …). */
export class RequestError extends Error {
  override readonly name = "RequestError";
  readonly code = "DV_BAD_REQUEST";
  readonly status: number;
  readonly slug: string;
  readonly title: string;
  readonly errors: { pointer: string; message: string }[];
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    slug: string,
    title: string,
    detail: string,
    extra: {
      errors?: { pointer: string; message: string }[];
      headers?: Record<string, string>;
    } = {},
  ) {
    super(detail);
    this.status = status;
    this.slug = slug;
    this.title = title;
    this.errors = extra.errors ?? [];
    this.headers = extra.headers ?? {};
  }
}

/**
 * Maps any error thrown while handling a request to a problem and any headers it needs. Known
 * errors keep their message (written for users); unknown ones become a bare 500 — no stack, no
 * SQL, no driver text ever reaches a client.
 */
export function toProblem(err: unknown): {
  body: ProblemBody;
  headers: Record<string, string>;
  expected: boolean;
} {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const part = (err as { validationContext?: string }).validationContext ?? "body";
    const errors = err.validation.flatMap((v) => {
      const at = `/${part}${v.instancePath === "/" ? "" : v.instancePath}`;
      const keys = (v.params as { keys?: unknown }).keys;
      if (v.keyword === "unrecognized_keys" && Array.isArray(keys)) {
        return keys.map((k) => ({
          pointer: `${at}/${String(k)}`,
          message: "unknown field; remove it",
        }));
      }
      return [{ pointer: at, message: v.message ?? "invalid" }];
    });
    const detail = errors.map((e) => `${e.pointer}: ${e.message}`).join("; ");
    return {
      body: { ...problem(400, "invalid-request", "The request is not valid", detail), errors },
      headers: {},
      expected: true,
    };
  }
  if (err instanceof RequestError) {
    const body = problem(err.status, err.slug, err.title, err.message);
    return {
      body: err.errors.length > 0 ? { ...body, errors: err.errors } : body,
      headers: err.headers,
      expected: true,
    };
  }
  if (err instanceof AuthenticationError) {
    // A header value is visible ASCII (a character beyond it makes Node refuse the whole reply).
    const description = err.message.replaceAll('"', "'").replace(/[^\x20-\x7e]/g, "?");
    return {
      body: problem(401, "unauthorized", "Authentication is required", err.message),
      headers: {
        "www-authenticate":
          err.failure === "missing"
            ? 'Bearer realm="dataverket"'
            : `Bearer realm="dataverket", error="invalid_token", error_description="${description}"`,
      },
      expected: true,
    };
  }
  if (err instanceof ForbiddenError)
    return {
      body: problem(403, "forbidden", "Not allowed", err.message),
      headers: {},
      expected: true,
    };
  if (err instanceof NotFoundError)
    return {
      body: problem(404, "not-found", "Not found", err.message),
      headers: {},
      expected: true,
    };
  if (err instanceof VersionConflictError) {
    return {
      body: problem(
        412,
        "precondition-failed",
        "The resource changed since you read it",
        `${err.message}; GET it for the current ETag`,
      ),
      headers: {},
      expected: true,
    };
  }
  if (err instanceof AlreadyExistsError)
    return {
      body: problem(409, "already-exists", "The name is taken", err.message),
      headers: {},
      expected: true,
    };
  if (err instanceof QuotaExceededError) {
    return {
      body: {
        ...problem(409, "quota-exceeded", "A quota would be exceeded", err.message),
        quota: {
          name: err.quota,
          scope: err.scope,
          limit: err.limit,
          used: err.used,
          requested: err.requested,
        },
      },
      headers: {},
      expected: true,
    };
  }
  if (err instanceof InvalidReferenceError) {
    return {
      body: {
        ...problem(
          422,
          "invalid-reference",
          "The request names something that cannot be used",
          err.message,
        ),
        errors: [{ pointer: err.field, message: err.message }],
      },
      headers: {},
      expected: true,
    };
  }
  if (err instanceof PoolExhaustedError) {
    return {
      body: problem(409, "pool-exhausted", "Nothing left to allocate", err.message),
      headers: {},
      expected: true,
    };
  }
  if (err instanceof CapacityExhaustedError) {
    return {
      body: problem(409, "capacity-exhausted", "Not enough capacity", err.message),
      headers: {},
      expected: true,
    };
  }
  if (err instanceof InUseError)
    return {
      body: problem(409, "in-use", "Still in use", err.message),
      headers: {},
      expected: true,
    };
  if (err instanceof OverlapError)
    return {
      body: problem(409, "overlap", "Overlaps an existing range", err.message),
      headers: {},
      expected: true,
    };
  if (err instanceof InvalidTransitionError) {
    return {
      body: problem(409, "invalid-state", "Not possible in the current state", err.message),
      headers: {},
      expected: true,
    };
  }
  if (err instanceof BackupError && err.code === BackupErrorCode.Unsupported) {
    return {
      body: {
        ...problem(400, "invalid-request", "The request is not valid", err.message),
        errors: [{ pointer: "/querystring/context", message: err.message }],
      },
      headers: {},
      expected: true,
    };
  }
  if (err instanceof BackupError) {
    return {
      body: problem(503, "backup-failed", "The backup could not be taken", err.message),
      headers: {},
      expected: false,
    };
  }
  if (err instanceof LabelSelectorError) {
    return {
      body: {
        ...problem(400, "invalid-request", "The request is not valid", err.message),
        errors: [{ pointer: "/querystring/labelSelector", message: err.message }],
      },
      headers: {},
      expected: true,
    };
  }
  if (sqlStateOf(err) === "25006") {
    // read_only_sql_transaction: the server is a replica (or was demoted under us).
    return {
      body: problem(
        503,
        "database-read-only",
        "The database refuses writes",
        "the database server is a replica (in recovery) and refuses writes; nothing was changed: try again once the control plane is connected to the primary",
      ),
      headers: { "retry-after": "30" },
      expected: true,
    };
  }
  if (isPoolTimeout(err)) {
    // Overloaded: every connection to PostgreSQL stayed busy for the pool's timeout. The
    // statement was never sent, so the request was not carried out; shed it with a hint.
    return {
      body: problem(
        503,
        "database-busy",
        "The database is busy",
        "every connection of this server to PostgreSQL stayed busy for the pool's timeout, so the request was not carried out: retry in a moment (a write with the same Idempotency-Key)",
      ),
      headers: { "retry-after": "2" },
      expected: true,
    };
  }
  if (isDatabaseUnavailable(err)) {
    // PostgreSQL went away (a restart, a failover, the network): nothing was refused. A write
    // cut off mid-way may or may not have committed, so the retry carries its Idempotency-Key.
    return {
      body: problem(
        503,
        "database-unavailable",
        "The database is unavailable",
        "this server lost its connection to PostgreSQL (a restart or a network fault); retry in a moment — a write with the same Idempotency-Key, which is safe whether or not the first attempt was carried out",
      ),
      headers: { "retry-after": "2" },
      expected: true,
    };
  }
  if (isResponseSerializationError(err)) {
    return {
      body: problem(
        500,
        "internal",
        "Internal error",
        "the server failed to answer; the error is logged",
      ),
      headers: {},
      expected: false,
    };
  }
  const status = (err as { statusCode?: unknown }).statusCode;
  const code = (err as { code?: unknown }).code;
  if (typeof status === "number" && status >= 400 && status < 500) {
    // Fastify's own request errors: body too large, bad JSON, unsupported media type, …
    const known: Record<string, [string, string]> = {
      FST_ERR_CTP_BODY_TOO_LARGE: ["payload-too-large", "The body is too large"],
      FST_ERR_CTP_INVALID_MEDIA_TYPE: ["unsupported-media-type", "Send application/json"],
      FST_ERR_CTP_INVALID_CONTENT_LENGTH: ["invalid-request", "The request is not valid"],
      FST_ERR_CTP_EMPTY_JSON_BODY: ["invalid-request", "The request is not valid"],
    };
    const [slug, title] = (typeof code === "string" ? known[code] : undefined) ?? [
      "invalid-request",
      "The request is not valid",
    ];
    const detail =
      code === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
        ? "the body must be application/json"
        : err instanceof SyntaxError
          ? "the body is not valid JSON"
          : err instanceof Error
            ? err.message
            : "bad request";
    return { body: problem(status, slug, title, detail), headers: {}, expected: true };
  }
  return {
    body: problem(
      500,
      "internal",
      "Internal error",
      "the server failed to answer; the error is logged",
    ),
    headers: {},
    expected: false,
  };
}
