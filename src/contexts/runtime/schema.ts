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
  /** The datacenter of the holder. */
  datacenterId: text(),
  acquiredAt: timestamptz(),
  renewedAt: timestamptz(),
  expiresAt: timestamptz(),
});

/**
 * Messages committed with the state change that caused them, waiting for the relay. A failed
 * publish waits until `available_at`. A published row is kept (ADR 0012): a command until a
 * worker records it done (handled, skipped or dead-lettered), an event for the outbox's
 * retention after JetStream acknowledged it; a relay that (re)connects sends every kept row again.
 */
export const outbox = runtime.table(
  "outbox",
  {
    /** The envelope id, also the JetStream `Nats-Msg-Id`. */
    id: uuid().primaryKey(),
    subject: text().notNull(),
    envelope: jsonb().$type<Record<string, unknown>>().notNull(),
    headers: jsonb().$type<Record<string, string>>().notNull().default({}),
    createdAt: timestamptz().notNull().defaultNow(),
    availableAt: timestamptz().notNull().defaultNow(),
    attempts: integer().notNull().default(0),
    lastError: text(),
    /**
     * The datacenter of the process that wrote it: only relays of that datacenter publish it, so
     * a message for another site crosses the site link over NATS, never through this table.
     * Null: any relay.
     */
    origin: text(),
    /** When JetStream acknowledged it; null while it waits to be published (again). */
    publishedAt: timestamptz(),
  },
  (t) => [
    index("outbox_due")
      .on(t.availableAt, t.createdAt)
      .where(sql`${t.publishedAt} IS NULL`),
    index("outbox_published")
      .on(t.publishedAt)
      .where(sql`${t.publishedAt} IS NOT NULL`),
  ],
);

/**
 * Message ids a consumer has handled, written in the same transaction as the effect, with the
 * outcome it announced — re-announced when the same message arrives again.
 */
export const inbox = runtime.table(
  "inbox",
  {
    consumer: text().notNull(),
    messageId: text().notNull(),
    handledAt: timestamptz().notNull().defaultNow(),
    /** The event published for this message (subject and envelope), if any. */
    outcome: jsonb().$type<{ subject: string; envelope: Record<string, unknown> } | null>(),
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

/** Every failed attempt at a command, so a dead letter carries all of its errors. */
export const commandAttempts = runtime.table(
  "command_attempts",
  {
    consumer: text().notNull(),
    messageId: text().notNull(),
    attempt: integer().notNull(),
    at: timestamptz().notNull().defaultNow(),
    code: text().notNull(),
    message: text().notNull(),
  },
  (t) => [
    primaryKey({ name: "command_attempts_pkey", columns: [t.consumer, t.messageId, t.attempt] }),
  ],
);

/**
 * Secrets the control plane's processes share through the database, made by the first that
 * needs one: the key that signs the API's list cursors, so a cursor one API replica gave out is
 * accepted by every other. Deleting a row rotates it (cursors signed with it are then refused).
 */
export const signingKeys = runtime.table("signing_keys", {
  name: text().primaryKey(),
  /** The key, base64url (32 random bytes). */
  secret: text().notNull(),
  createdAt: timestamptz().notNull().defaultNow(),
});

/** Controller replicas alive (renewed with their leases), so shards are shared fairly. */
export const leaseMembers = runtime.table("lease_members", {
  holder: text().primaryKey(),
  datacenterId: text().notNull(),
  expiresAt: timestamptz().notNull(),
});

/**
 * Backups of this database taken through the API (`dv db backup`): who took one, when, how big,
 * and the SHA-256 of what was sent, so an operator can tell what backup exists and how recent it
 * is. The file itself lives wherever the operator keeps it.
 */
export const backups = runtime.table(
  "backups",
  {
    id: uuid().primaryKey(),
    /** `running` while the dump streams, then `succeeded` or `failed`. */
    state: text().notNull().default("running"),
    /** `pg_dump` (custom format) or `pglite` (a gzipped tar of the embedded data directory). */
    format: text().notNull(),
    actor: text().notNull(),
    startedAt: timestamptz().notNull().defaultNow(),
    finishedAt: timestamptz(),
    bytes: bigint({ mode: "number" }),
    sha256: text(),
    /** The newest migration the database had: a restore needs a build that knows it. */
    latestMigration: text(),
    error: text(),
    /** `database` (every schema), or the one bounded context (schema) backed up. */
    scope: text().notNull().default("database"),
    /** The newest write to tenants, resources and tasks in the snapshot (a restore over a
     * database with newer data would lose that data). */
    dataAsOf: timestamptz(),
    /** Rows per `schema.table` in the snapshot, read in the snapshot itself; null when it could
     * not be (PGlite). */
    tables: jsonb().$type<Record<string, number>>(),
    serverVersion: text(),
  },
  (t) => [
    check("backups_state", sql`${t.state} IN ('running', 'succeeded', 'failed')`),
    index("backups_started").on(t.startedAt),
  ],
);

/** Restores of this database (`dv db restore`), written into the restored database afterwards. */
export const restores = runtime.table("restores", {
  id: uuid().primaryKey(),
  restoredAt: timestamptz().notNull().defaultNow(),
  actor: text().notNull(),
  format: text().notNull(),
  bytes: bigint({ mode: "number" }).notNull(),
  sha256: text().notNull(),
  /** The backup restored, when the file is one this database recorded. */
  backupId: uuid(),
  /** When the restored backup was taken, when known. */
  backupTakenAt: timestamptz(),
  /** How long the restore took. */
  durationMs: integer().notNull(),
  /** `database`, or the bounded context restored. */
  scope: text().notNull().default("database"),
  /** The invariants checked after the restore that did not hold (empty: all held). */
  violations: jsonb().$type<string[]>().notNull().default([]),
});
