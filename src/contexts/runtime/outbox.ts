import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import { outbox } from "./schema.js";

/** A message to send once the transaction that produced it commits. */
export interface OutboxMessage {
  /** The envelope id; also the JetStream message id, so a re-publish is de-duplicated. */
  readonly id: string;
  readonly subject: string;
  readonly envelope: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/**
 * The transactional outbox: commands and events are written here in the same transaction as the
 * state change that caused them, and the relay publishes them after commit. PostgreSQL stays the
 * authority; NATS only delivers.
 */
export class OutboxStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** Adds messages to the outbox inside the caller's transaction. */
  enqueue(tx: Tx, messages: readonly OutboxMessage[]): Promise<void> {
    if (messages.length === 0) return Promise.resolve();
    return this.inTx(tx, async (q) => {
      await q.insert(outbox).values(messages.map((m) => ({ ...m, headers: m.headers ?? {} })));
    });
  }
}
