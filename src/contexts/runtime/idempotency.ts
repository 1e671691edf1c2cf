import { and, eq, gt, lt, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  mapUniqueViolation,
  type Tx,
} from "../../db/index.js";
import { idempotencyKeys } from "./schema.js";

/** The first response to a request made with an `Idempotency-Key`. */
export interface StoredResponse {
  readonly requestHash: string;
  readonly statusCode: number;
  readonly body: unknown;
  readonly location: string | null;
}

/** Thrown when another request with the same key committed first (a concurrent retry). */
export class IdempotencyKeyTakenError extends Error {
  override readonly name = "IdempotencyKeyTakenError";
  readonly code = "DV_IDEMPOTENCY_KEY_TAKEN";
}

/**
 * Remembers responses to idempotent POSTs. The key is claimed first and the response stored last
 * in the transaction of the change itself, so either both exist or neither does, and a concurrent
 * retry waits for the first and then answers with its response.
 */
export class IdempotencyStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** The stored response of an unexpired key, if any. */
  async find(scope: string, key: string): Promise<StoredResponse | undefined> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select({
          requestHash: idempotencyKeys.requestHash,
          statusCode: idempotencyKeys.statusCode,
          body: idempotencyKeys.body,
          location: idempotencyKeys.location,
        })
        .from(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.scope, scope),
            eq(idempotencyKeys.key, key),
            gt(idempotencyKeys.expiresAt, sql`now()`),
          ),
        ),
    );
    return row;
  }

  /**
   * Claims a key at the start of the change's transaction. A concurrent request with the same key
   * waits here until the first commits (then fails) or rolls back (then proceeds).
   *
   * @throws {IdempotencyKeyTakenError} when a request with the key committed first.
   */
  claim(
    tx: Tx,
    input: { scope: string; key: string; requestHash: string; ttlHours: number },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      // An expired key may be reused.
      await q
        .delete(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.scope, input.scope),
            eq(idempotencyKeys.key, input.key),
            lt(idempotencyKeys.expiresAt, sql`now()`),
          ),
        );
      await mapUniqueViolation(
        () =>
          q.insert(idempotencyKeys).values({
            scope: input.scope,
            key: input.key,
            requestHash: input.requestHash,
            // Placeholders, replaced by complete() before the transaction commits.
            statusCode: 0,
            body: {},
            location: null,
            expiresAt: sql`now() + make_interval(hours => ${input.ttlHours})`,
          }),
        ["idempotency_keys_pkey"],
        () =>
          new IdempotencyKeyTakenError(
            `idempotency key ${input.key} was used by a concurrent request`,
          ),
      );
    });
  }

  /** Records the response of a claimed key, in the same transaction, just before it commits. */
  complete(
    tx: Tx,
    input: {
      scope: string;
      key: string;
      statusCode: number;
      body: unknown;
      location: string | null;
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .update(idempotencyKeys)
        .set({ statusCode: input.statusCode, body: input.body, location: input.location })
        .where(and(eq(idempotencyKeys.scope, input.scope), eq(idempotencyKeys.key, input.key)));
    });
  }

  /** Deletes expired keys; returns how many. */
  purgeExpired(tx: Tx): Promise<number> {
    return this.inTx(tx, async (q) => {
      const rows = await q
        .delete(idempotencyKeys)
        .where(lt(idempotencyKeys.expiresAt, sql`now()`))
        .returning({ key: idempotencyKeys.key });
      return rows.length;
    });
  }
}
