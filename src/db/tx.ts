import { sql } from "drizzle-orm";
import type { Database, IsolationLevel, Tx } from "./database.js";

/**
 * The PostgreSQL role of each bounded context. A context's operations run as its role, which may
 * read and write that context's schema and nothing else, so a boundary violation is refused by
 * the database, not just by review.
 */
export const ContextRole = {
  tenancy: "dv_tenancy",
  inventory: "dv_inventory",
  task: "dv_task",
  audit: "dv_audit",
  platform: "dv_platform",
  runtime: "dv_runtime",
  /** Not a Sentral context: the simulated domain services' own store. */
  simulator: "dv_simulator",
} as const;
export type ContextRole = (typeof ContextRole)[keyof typeof ContextRole];

/**
 * Switches the rest of the transaction to `role` (`SET LOCAL ROLE`), until another context's
 * operation switches it again; the role reverts when the transaction ends.
 */
export async function actAs(tx: Tx, role: ContextRole): Promise<void> {
  // `role` is one of the constants above, never user input.
  await tx.execute(sql.raw(`SET LOCAL ROLE ${role}`));
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
