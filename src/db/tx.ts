import { sql } from "drizzle-orm";
import type { ContextRole } from "./context-roles.js";
import type { Database, IsolationLevel, Tx } from "./database.js";

/** The role each open transaction acts as now, so a repeated switch costs no round trip. */
const actingAs = new WeakMap<Tx, ContextRole>();

/**
 * Switches the rest of the transaction to `role` (`SET LOCAL ROLE`), until another context's
 * operation switches it again; the role reverts when the transaction ends. A switch to the role
 * already in force is skipped.
 */
export async function actAs(tx: Tx, role: ContextRole): Promise<void> {
  if (actingAs.get(tx) === role) return;
  // `role` is one of the ContextRole constants, never user input.
  await tx.execute(sql.raw(`SET LOCAL ROLE ${role}`));
  actingAs.set(tx, role);
}

/**
 * Runs `fn` in a savepoint of `tx`: what it does is undone alone if it throws. Use this rather
 * than `tx.transaction`: a role set inside a savepoint survives its release and is undone by its
 * rollback, so the outer transaction must ask again which role it acts as.
 */
export async function withSavepoint<T>(tx: Tx, fn: (savepoint: Tx) => Promise<T>): Promise<T> {
  try {
    // eslint-disable-next-line no-restricted-syntax -- this is the one place allowed to
    return await tx.transaction(fn);
  } finally {
    actingAs.delete(tx);
  }
}

/** Options of {@link inTransaction}. */
export interface TransactionOptions {
  readonly isolationLevel?: IsolationLevel;
}

/**
 * Runs `fn` in one transaction: everything it does commits together or not at all. Contexts
 * compose inside it — an intent, its reservations, its audit record and its outbox message.
 */
export function inTransaction<T>(
  db: Database,
  fn: (tx: Tx) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  return db.transaction(fn, options.isolationLevel);
}
