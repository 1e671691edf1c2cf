import { and, inArray, isNull, sql } from "drizzle-orm";
import {
  anyUuid,
  ContextRole,
  ContextStore,
  type Database,
  executeNamed,
  rowsOf,
  type Tx,
} from "../../db/index.js";
import { isUuid } from "../../kernel/index.js";
import { outbox } from "./schema.js";

/**
 * The channel the outbox announces new rows on, so the relay wakes at once: trigger
 * outbox_notify notifies it once per insert statement.
 */
export const OUTBOX_CHANNEL = "dv_outbox";

/** A message to send once the transaction that produced it commits. */
export interface OutboxMessage {
  /** The envelope id; also the JetStream message id, so a re-publish is de-duplicated. */
  readonly id: string;
  readonly subject: string;
  readonly envelope: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/** A claimed row, with how often it was tried: its envelope as the JSON text to publish. */
export interface PendingMessage {
  readonly id: string;
  readonly subject: string;
  readonly payload: string;
  /** The envelope's `datacenter_id`: where a command goes when sites have NATS of their own. */
  readonly datacenterId: string | null;
  readonly headers: Record<string, string>;
  readonly attempts: number;
}

/** A row of `runtime.claim_outbox`, as PostgreSQL names its columns. */
type PendingRow = {
  readonly id: string;
  readonly subject: string;
  readonly payload: string;
  readonly datacenter_id: string | null;
  readonly headers: Record<string, string>;
  readonly attempts: number;
};

/** What the relay did with each claimed message. */
export interface PublishOutcome {
  readonly sent: readonly string[];
  readonly failed: readonly { id: string; error: string; retryInMs: number }[];
}

/**
 * The transactional outbox: commands and events are written here in the same transaction as the
 * state change that caused them, and the relay publishes them after commit. PostgreSQL stays the
 * authority; NATS only delivers. A published command stays until a worker records it done, an
 * event for a retention longer than NATS's fsync interval (ADR 0012), so a nats-server that loses
 * what it acknowledged but had not synced loses nothing: the relay sends the kept rows again.
 */
export class OutboxStore extends ContextStore {
  readonly #origin: string | null;

  /**
   * @param origin The datacenter of this process: what it writes is relayed only by relays of
   *   the same datacenter, which claim only such rows (and rows of no origin). Null: any relay.
   */
  constructor(db: Database, origin: string | null = null) {
    super(db, ContextRole.runtime);
    this.#origin = origin;
  }

  /**
   * Adds messages to the outbox inside the caller's transaction and wakes the relay on commit,
   * in one statement whatever their number. With `resend`, a message whose id is already there
   * is sent again if it was published (a re-announcement, a re-dispatch) instead of duplicated.
   */
  enqueue(
    tx: Tx,
    messages: readonly OutboxMessage[],
    options: { resend?: boolean } = {},
  ): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    // The rows travel as one JSON document, one parameter: an insert built value by value cost
    // more CPU than the database spent on it (a third of a busy worker's time, measured).
    const rows = JSON.stringify(
      messages.map((m) => ({
        id: m.id,
        subject: m.subject,
        envelope: m.envelope,
        headers: m.headers ?? {},
      })),
    );
    return this.inTx(tx, async (q) => {
      // The insert wakes the relays itself (trigger outbox_notify on dv_outbox).
      await executeNamed(
        q,
        options.resend ? "runtime_outbox_enqueue_resend" : "runtime_outbox_enqueue",
        sql`
        INSERT INTO ${outbox} (id, subject, envelope, headers, origin)
        SELECT r.id, r.subject, r.envelope, r.headers, ${this.#origin}::text
          FROM jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, subject text, envelope jsonb, headers jsonb)
        ${
          options.resend
            ? sql`ON CONFLICT (id) DO UPDATE SET published_at = NULL,
                    available_at = least(${outbox.availableAt}, now())
                  WHERE ${outbox.publishedAt} IS NOT NULL`
            : sql``
        }`,
      );
    });
  }

  /**
   * The commands of `ids` are done (handled, skipped or dead-lettered): their rows, kept since
   * they were published in case NATS lost them, go. One statement, in the caller's transaction.
   */
  done(tx: Tx, ids: readonly string[]): Promise<void> {
    // A message that never was an outbox row (a poison message published by hand) has nothing
    // here, and an id that is not a UUID cannot be one.
    const rows = ids.filter(isUuid);
    if (rows.length === 0) return Promise.resolve();
    return this.inTx(tx, async (q) => {
      await q.delete(outbox).where(sql`${outbox.id} = ${anyUuid(rows)}`);
    });
  }

  /**
   * Claims up to `limit` due messages (oldest first; rows other relays hold are skipped, not
   * waited for), lets `publish` send them while the rows stay locked, then marks what was sent
   * published and postpones what failed — one transaction, four statements whatever the batch.
   * A relay that dies mid-way leaves its rows to the next claim; their ids make a re-publish
   * harmless.
   */
  relay(
    limit: number,
    publish: (messages: PendingMessage[]) => Promise<PublishOutcome>,
  ): Promise<number> {
    return this.db.transaction(async (tx) =>
      this.inTx(tx, async (q) => {
        // An index scan in due order, always (migration 0018 says why): the text of the envelope
        // as stored, since parsing the jsonb only to serialise it again for NATS was most of the
        // relay's CPU per message.
        const rows = rowsOf<PendingRow>(
          await executeNamed(
            q,
            "runtime_outbox_claim",
            sql`SELECT * FROM runtime.claim_outbox(${limit}::int, ${this.#origin}::text)`,
          ),
        ).map((r) => ({
          id: r.id,
          subject: r.subject,
          payload: r.payload,
          datacenterId: r.datacenter_id,
          headers: r.headers,
          attempts: r.attempts,
        }));
        if (rows.length === 0) return 0;
        const outcome = await publish(rows);
        if (outcome.sent.length > 0)
          // The time of the acknowledgement, not of the claim: a pass can wait on NATS for a
          // while, and the retention counts from when NATS had the message.
          await executeNamed(
            q,
            "runtime_outbox_published",
            sql`UPDATE ${outbox} SET published_at = clock_timestamp()
                 WHERE ${outbox.id} = ${anyUuid(outcome.sent)}`,
          );
        if (outcome.failed.length > 0) {
          // One statement for every failure: each row its own error and back-off.
          const values = sql.join(
            outcome.failed.map(
              (f) =>
                sql`(${f.id}::uuid, ${f.error.slice(0, 1000)}::text, ${f.retryInMs / 1000}::float8)`,
            ),
            sql`, `,
          );
          await q.execute(sql`
            UPDATE ${outbox} SET
              attempts = ${outbox.attempts} + 1,
              last_error = v.error,
              available_at = now() + make_interval(secs => v.secs)
            FROM (VALUES ${values}) AS v(id, error, secs)
            WHERE ${outbox.id} = v.id`);
        }
        return outcome.sent.length;
      }),
    );
  }

  /**
   * Deletes events published more than `retainMs` ago (NATS has synced them to disk since);
   * commands stay until they are {@link done}. At most `limit` rows, skipping rows another relay
   * is deleting. Returns how many went.
   */
  sweep(retainMs: number, limit = 10_000): Promise<number> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const rows = await q.execute<{ id: string }>(sql`
          DELETE FROM ${outbox} WHERE ${outbox.id} IN (
            SELECT ${outbox.id} FROM ${outbox}
             WHERE ${outbox.publishedAt} < now() - make_interval(secs => ${retainMs / 1000}::float8)
               AND ${outbox.subject} NOT LIKE 'dv.%.cmd.%'
               ${this.#originFilter()}
             LIMIT ${limit}
             FOR UPDATE SKIP LOCKED)
          RETURNING ${outbox.id}`);
        return rowsOf(rows).length;
      }),
    );
  }

  /**
   * Marks every kept row of this relay's origin unpublished, so it is sent again: what a relay
   * does when it (re)connects, because NATS may have restarted and lost what it had not synced.
   * Returns how many rows will be re-sent.
   */
  resendPublished(): Promise<number> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const rows = await q.execute<{ id: string }>(sql`
          UPDATE ${outbox} SET published_at = NULL, available_at = least(${outbox.availableAt}, now())
           WHERE ${outbox.publishedAt} IS NOT NULL ${this.#originFilter()}
          RETURNING ${outbox.id}`);
        return rowsOf(rows).length;
      }),
    );
  }

  #originFilter() {
    return this.#origin === null
      ? sql``
      : sql`AND (${outbox.origin} IS NULL OR ${outbox.origin} = ${this.#origin})`;
  }

  /**
   * The messages of `ids` still waiting after a failed publish: what could not be delivered
   * yet (the site of a command unreachable), with the last error.
   */
  async undelivered(
    ids: readonly string[],
    tx?: Tx,
  ): Promise<{ id: string; attempts: number; lastError: string | null; createdAt: Date }[]> {
    if (ids.length === 0) return [];
    return this.reading(tx, (q) =>
      q
        .select({
          id: outbox.id,
          attempts: outbox.attempts,
          lastError: outbox.lastError,
          createdAt: outbox.createdAt,
        })
        .from(outbox)
        .where(
          and(
            inArray(outbox.id, [...ids]),
            isNull(outbox.publishedAt),
            sql`${outbox.attempts} > 0`,
          ),
        ),
    );
  }

  /**
   * How many messages wait to be published, how old the oldest is, and how many published ones
   * are kept (commands not done yet, events within the retention).
   */
  async backlog(): Promise<{ count: number; oldestAgeSeconds: number; kept: number }> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select({
          count: sql<number>`(count(*) FILTER (WHERE ${outbox.publishedAt} IS NULL))::int`,
          age: sql<number>`coalesce(extract(epoch from now() - min(${outbox.createdAt}) FILTER (WHERE ${outbox.publishedAt} IS NULL)), 0)::float8`,
          kept: sql<number>`(count(*) FILTER (WHERE ${outbox.publishedAt} IS NOT NULL))::int`,
        })
        .from(outbox),
    );
    return { count: row?.count ?? 0, oldestAgeSeconds: row?.age ?? 0, kept: row?.kept ?? 0 };
  }
}
