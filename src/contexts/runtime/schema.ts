import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  uuid,
} from "drizzle-orm/pg-core";
import { timestamptz, versionColumn } from "../../db/index.js";

/**
 * The runtime schema: the control plane's own operational state — shard leases with fencing
 * tokens, the transactional outbox, the consumers' inbox, and dead letters.
 */
export const runtime = pgSchema("runtime");

/** One row per shard: who holds it, until when, and the fencing token of the current grant. */
export const leases = runtime.table("leases", {
  shard: integer().primaryKey(),
  holder: text(),
  fencingToken: bigint({ mode: "number" }).notNull().default(0),
  acquiredAt: timestamptz(),
  renewedAt: timestamptz(),
  expiresAt: timestamptz(),
});

/** Messages committed with the state change that caused them, waiting for the relay. */
export const outbox = runtime.table(
  "outbox",
  {
    /** The envelope id, also the JetStream `Nats-Msg-Id`. */
    id: uuid().primaryKey(),
    subject: text().notNull(),
    envelope: jsonb().$type<Record<string, unknown>>().notNull(),
    headers: jsonb().$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamptz().notNull().defaultNow(),
    sentAt: timestamptz(),
    attempts: integer().notNull().default(0),
    lastError: text(),
  },
  (t) => [
    index("outbox_pending")
      .on(t.createdAt)
      .where(sql`${t.sentAt} IS NULL`),
  ],
);

/** Message ids a consumer has handled, written in the same transaction as the effect. */
export const inbox = runtime.table(
  "inbox",
  {
    consumer: text().notNull(),
    messageId: text().notNull(),
    handledAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "inbox_pkey", columns: [t.consumer, t.messageId] })],
);

/** Work that could not be done: the envelope, every error, and what an operator did about it. */
export const deadLetters = runtime.table(
  "dead_letters",
  {
    id: uuid().primaryKey(),
    messageId: text().notNull(),
    subject: text().notNull(),
    service: text().notNull(),
    type: text().notNull(),
    envelope: jsonb().$type<Record<string, unknown>>().notNull(),
    errors: jsonb().$type<{ at: string; code: string; message: string }[]>().notNull(),
    deliveryCount: integer().notNull(),
    reason: text().notNull(),
    correlationId: text().notNull(),
    causationId: text(),
    taskId: uuid(),
    state: text().notNull().default("open"),
    resolvedAt: timestamptz(),
    resolvedBy: text(),
    replayMessageId: text(),
    version: versionColumn(),
    createdAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [
    check("dead_letters_state", sql`${t.state} IN ('open', 'replayed', 'discarded')`),
    index("dead_letters_open")
      .on(t.service, t.createdAt)
      .where(sql`${t.state} = 'open'`),
  ],
);

/**
 * Responses of POSTs sent with an `Idempotency-Key`, written in the same transaction as the
 * change, so a retry gets the first response and never a second change.
 */
export const idempotencyKeys = runtime.table(
  "idempotency_keys",
  {
    /** Whose key it is (the caller's subject and tenant): keys of different callers never meet. */
    scope: text().notNull(),
    key: text().notNull(),
    /** SHA-256 of method, path and body: the same key with another request is refused. */
    requestHash: text().notNull(),
    statusCode: integer().notNull(),
    body: jsonb().$type<unknown>().notNull(),
    location: text(),
    createdAt: timestamptz().notNull().defaultNow(),
    expiresAt: timestamptz().notNull(),
  },
  (t) => [
    primaryKey({ name: "idempotency_keys_pkey", columns: [t.scope, t.key] }),
    index("idempotency_keys_expiry").on(t.expiresAt),
  ],
);
