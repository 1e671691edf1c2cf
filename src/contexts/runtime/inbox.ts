import { and, asc, eq, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, rowsOf, type Tx } from "../../db/index.js";
import { commandAttempts, inbox } from "./schema.js";

/** The event a handled message announced, re-announced when the message comes again. */
export interface Outcome {
  readonly subject: string;
  readonly envelope: Record<string, unknown>;
}

/** One failed attempt at a command. */
export interface Attempt {
  readonly attempt: number;
  readonly at: Date;
  readonly code: string;
  readonly message: string;
}

/**
 * The consumers' inbox: which message ids each consumer has handled, written in the same
 * transaction as the effect, so a redelivered message changes nothing a second time.
 */
export class InboxStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** The recorded outcome of a handled message, `null` when handled without one, `undefined` when new. */
  async handled(consumer: string, messageId: string, tx?: Tx): Promise<Outcome | null | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select({ outcome: inbox.outcome })
        .from(inbox)
        .where(and(eq(inbox.consumer, consumer), eq(inbox.messageId, messageId))),
    );
    return row ? row.outcome : undefined;
  }

  /**
   * The recorded outcomes of many (consumer, message id) pairs, in one statement: the map holds
   * the handled ones (`null` when handled without an outcome), keyed `consumer/messageId`.
   */
  async handledMany(
    tx: Tx,
    pairs: readonly { consumer: string; messageId: string }[],
  ): Promise<Map<string, Outcome | null>> {
    const out = new Map<string, Outcome | null>();
    if (pairs.length === 0) return out;
    const wanted = JSON.stringify(pairs.map((p) => ({ c: p.consumer, m: p.messageId })));
    const rows = await this.inTx(tx, (q) =>
      q
        .select({ consumer: inbox.consumer, messageId: inbox.messageId, outcome: inbox.outcome })
        .from(inbox)
        .innerJoin(
          sql`jsonb_to_recordset(${wanted}::jsonb) AS w(c text, m text)`,
          sql`${inbox.consumer} = w.c AND ${inbox.messageId} = w.m`,
        ),
    );
    for (const row of rows) out.set(`${row.consumer}/${row.messageId}`, row.outcome);
    return out;
  }

  /**
   * Records a message as handled inside the effect's transaction. Returns false when it already
   * was (a concurrent duplicate committed first): the caller rolls back its effect.
   */
  record(tx: Tx, consumer: string, messageId: string, outcome: Outcome | null): Promise<boolean> {
    return this.inTx(tx, async (q) => {
      const rows = await q
        .insert(inbox)
        .values({ consumer, messageId, outcome })
        .onConflictDoNothing()
        .returning({ id: inbox.messageId });
      return rows.length === 1;
    });
  }

  /**
   * Records messages handled together, in one statement inside their effects' transaction.
   * Returns the ids recorded now; one missing was recorded before (a concurrent duplicate
   * committed first), and the caller rolls back.
   */
  recordMany(
    tx: Tx,
    consumer: string,
    entries: readonly { messageId: string; outcome: Outcome | null }[],
  ): Promise<Set<string>> {
    if (entries.length === 0) return Promise.resolve(new Set());
    // One JSON parameter for every row (see OutboxStore.enqueue).
    const rows = JSON.stringify(entries.map((e) => ({ id: e.messageId, outcome: e.outcome })));
    return this.inTx(tx, async (q) => {
      const inserted = await q.execute(sql`
        INSERT INTO ${inbox} (consumer, message_id, outcome)
        SELECT ${consumer}::text, r.id, r.outcome
          FROM jsonb_to_recordset(${rows}::jsonb) AS r(id text, outcome jsonb)
        ON CONFLICT DO NOTHING
        RETURNING message_id`);
      return new Set(rowsOf<{ message_id: string }>(inserted).map((r) => r.message_id));
    });
  }

  /** Records a failed attempt (in its own transaction: it must survive the rollback of the effect). */
  async recordAttempt(
    consumer: string,
    messageId: string,
    attempt: Omit<Attempt, "at">,
  ): Promise<void> {
    await this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q
          .insert(commandAttempts)
          .values({ consumer, messageId, ...attempt })
          .onConflictDoUpdate({
            target: [commandAttempts.consumer, commandAttempts.messageId, commandAttempts.attempt],
            set: { code: attempt.code, message: attempt.message, at: sql`now()` },
          });
      }),
    );
  }

  /** Every failed attempt at a message, in order. */
  attempts(consumer: string, messageId: string, tx?: Tx): Promise<Attempt[]> {
    return this.reading(tx, (q) =>
      q
        .select({
          attempt: commandAttempts.attempt,
          at: commandAttempts.at,
          code: commandAttempts.code,
          message: commandAttempts.message,
        })
        .from(commandAttempts)
        .where(
          and(eq(commandAttempts.consumer, consumer), eq(commandAttempts.messageId, messageId)),
        )
        .orderBy(asc(commandAttempts.attempt)),
    );
  }
}
