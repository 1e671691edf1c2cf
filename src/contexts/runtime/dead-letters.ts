import { and, asc, eq, gt, inArray, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import { InvalidTransitionError, NotFoundError, type Page, toPage } from "../../kernel/index.js";
import { deadLetters } from "./schema.js";

export type DeadLetter = typeof deadLetters.$inferSelect;

/** What a dead letter records. */
export interface NewDeadLetter {
  readonly id: string;
  readonly messageId: string;
  readonly subject: string;
  readonly service: string;
  readonly type: string;
  readonly envelope: Record<string, unknown>;
  readonly errors: { at: string; code: string; message: string }[];
  readonly deliveryCount: number;
  readonly reason: string;
  readonly correlationId: string;
  readonly causationId: string | null;
  readonly taskId: string | null;
}

/** The states of a dead letter. */
export const DEAD_LETTER_STATES = ["open", "replayed", "discarded"] as const;
export type DeadLetterState = (typeof DEAD_LETTER_STATES)[number];

/**
 * Dead letters: work that could not be done, with its full envelope, every error and its
 * correlation context, until an operator replays or discards it. Nothing replays by itself.
 */
export class DeadLetterStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** Records a dead letter; a second one for the same message id is ignored (returns false). */
  create(tx: Tx, input: NewDeadLetter): Promise<boolean> {
    return this.inTx(tx, async (q) => {
      const existing = await q
        .select({ id: deadLetters.id })
        .from(deadLetters)
        .where(and(eq(deadLetters.messageId, input.messageId), eq(deadLetters.state, "open")));
      if (existing.length > 0) return false;
      await q.insert(deadLetters).values(input);
      return true;
    });
  }

  /** @throws {NotFoundError} */
  async get(id: string, tx?: Tx): Promise<DeadLetter> {
    const [row] = await this.reading(tx, (q) =>
      q.select().from(deadLetters).where(eq(deadLetters.id, id)),
    );
    if (!row) throw new NotFoundError("dead letter", id);
    return row;
  }

  /** The newest dead letter of each message id that has one, in one statement. */
  async newestByMessages(tx: Tx, messageIds: readonly string[]): Promise<Map<string, DeadLetter>> {
    const out = new Map<string, DeadLetter>();
    if (messageIds.length === 0) return out;
    const rows = await this.inTx(tx, (q) =>
      q
        .selectDistinctOn([deadLetters.messageId])
        .from(deadLetters)
        .where(inArray(deadLetters.messageId, [...messageIds]))
        .orderBy(deadLetters.messageId, sql`${deadLetters.createdAt} DESC`),
    );
    for (const row of rows) out.set(row.messageId, row);
    return out;
  }

  async list(
    filter: { state?: DeadLetterState; service?: string },
    options: { limit: number; after?: string | undefined },
  ): Promise<Page<DeadLetter>> {
    const rows = await this.reading(undefined, (q) =>
      q
        .select()
        .from(deadLetters)
        .where(
          and(
            filter.state ? eq(deadLetters.state, filter.state) : undefined,
            filter.service ? eq(deadLetters.service, filter.service) : undefined,
            options.after ? gt(deadLetters.id, options.after) : undefined,
          ),
        )
        .orderBy(asc(deadLetters.id))
        .limit(options.limit + 1),
    );
    return toPage(rows, options.limit);
  }

  /**
   * Marks an open dead letter as replayed or discarded by `actor`.
   *
   * @throws {InvalidTransitionError} when it is not open any more.
   */
  resolve(
    tx: Tx,
    id: string,
    to: "replayed" | "discarded",
    actor: string,
    replayMessageId?: string,
  ): Promise<DeadLetter> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(deadLetters)
        .set({
          state: to,
          resolvedAt: sql`now()`,
          resolvedBy: actor,
          replayMessageId: replayMessageId ?? null,
          version: sql`${deadLetters.version} + 1`,
        })
        .where(and(eq(deadLetters.id, id), eq(deadLetters.state, "open")))
        .returning();
      if (row) return row;
      const current = await this.get(id, tx);
      throw new InvalidTransitionError("dead letter", id, current.state, to);
    });
  }

  /** Open dead letters by service (for metrics). */
  async openByService(): Promise<{ service: string; reason: string; count: number }[]> {
    return this.reading(undefined, (q) =>
      q
        .select({
          service: deadLetters.service,
          reason: sql<string>`split_part(${deadLetters.reason}, ':', 1)`,
          count: sql<number>`count(*)::int`,
        })
        .from(deadLetters)
        .where(eq(deadLetters.state, "open"))
        .groupBy(deadLetters.service, sql`split_part(${deadLetters.reason}, ':', 1)`),
    );
  }
}
