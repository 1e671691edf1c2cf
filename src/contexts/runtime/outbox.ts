import { and, asc, eq, inArray, isNull, lte, or, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
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

/** A claimed row, with how often it was tried. */
export interface PendingMessage extends OutboxMessage {
  readonly headers: Record<string, string>;
  readonly attempts: number;
  readonly createdAt: Date;
}

/** What the relay did with each claimed message. */
export interface PublishOutcome {
  readonly sent: readonly string[];
  readonly failed: readonly { id: string; error: string; retryInMs: number }[];
}

/**
 * The transactional outbox: commands and events are written here in the same transaction as the
 * state change that caused them, and the relay publishes them after commit. PostgreSQL stays the
 * authority; NATS only delivers.
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
   * Adds messages to the outbox inside the caller's transaction and wakes the relay on commit.
   * With `ifAbsent`, a message whose id is already waiting is left as it is (re-announcing).
   */
  enqueue(
    tx: Tx,
    messages: readonly OutboxMessage[],
    options: { ifAbsent?: boolean } = {},
  ): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return this.inTx(tx, async (q) => {
      const insert = q
        .insert(outbox)
        .values(messages.map((m) => ({ ...m, headers: m.headers ?? {}, origin: this.#origin })));
      // The insert wakes the relays itself (trigger outbox_notify on dv_outbox).
      await (options.ifAbsent ? insert.onConflictDoNothing() : insert);
    });
  }

  /**
   * Claims up to `limit` due messages (oldest first; rows other relays hold are skipped, not
   * waited for), lets `publish` send them while the rows stay locked, then deletes what was
   * sent and postpones what failed — all in one transaction. A relay that dies mid-way leaves
   * its rows to the next claim; their ids make a re-publish harmless.
   */
  relay(
    limit: number,
    publish: (messages: PendingMessage[]) => Promise<PublishOutcome>,
  ): Promise<number> {
    return this.db.transaction(async (tx) =>
      this.inTx(tx, async (q) => {
        const rows = await q
          .select()
          .from(outbox)
          .where(
            and(
              lte(outbox.availableAt, sql`now()`),
              this.#origin === null
                ? undefined
                : or(isNull(outbox.origin), eq(outbox.origin, this.#origin)),
            ),
          )
          .orderBy(asc(outbox.availableAt), asc(outbox.createdAt))
          .limit(limit)
          .for("update", { skipLocked: true });
        if (rows.length === 0) return 0;
        const outcome = await publish(rows);
        if (outcome.sent.length > 0)
          await q.delete(outbox).where(inArray(outbox.id, [...outcome.sent]));
        for (const failure of outcome.failed) {
          await q
            .update(outbox)
            .set({
              attempts: sql`${outbox.attempts} + 1`,
              lastError: failure.error.slice(0, 1000),
              availableAt: sql`now() + make_interval(secs => ${failure.retryInMs / 1000})`,
            })
            .where(inArray(outbox.id, [failure.id]));
        }
        return outcome.sent.length;
      }),
    );
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
        .where(and(inArray(outbox.id, [...ids]), sql`${outbox.attempts} > 0`)),
    );
  }

  /** How many messages wait, and how old the oldest is. */
  async backlog(): Promise<{ count: number; oldestAgeSeconds: number }> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select({
          count: sql<number>`count(*)::int`,
          age: sql<number>`coalesce(extract(epoch from now() - min(${outbox.createdAt})), 0)::float8`,
        })
        .from(outbox),
    );
    return { count: row?.count ?? 0, oldestAgeSeconds: row?.age ?? 0 };
  }
}
