import { sql } from "drizzle-orm";
import type { ContextRole } from "./context-roles.js";
import type { Database, IsolationLevel, Tx } from "./database.js";
import { inRole, TransactionPipeline } from "./pipeline.js";

/**
 * The role each open transaction acts as now, so a repeated switch costs no round trip. A
 * savepoint shares its transaction's record: both are one connection.
 */
const actingAs = new WeakMap<Tx, { role: ContextRole | undefined }>();

function actingOf(tx: Tx): { role: ContextRole | undefined } {
  let acting = actingAs.get(tx);
  if (!acting) {
    acting = { role: undefined };
    actingAs.set(tx, acting);
  }
  return acting;
}

/**
 * Switches the rest of the transaction to `role` (`SET LOCAL ROLE`), until another context's
 * operation switches it again; the role reverts when the transaction ends. A switch to the role
 * already in force is skipped.
 */
export async function actAs(tx: Tx, role: ContextRole): Promise<void> {
  // A pipelined transaction knows which role its statements left in force (contexts may send
  // at the same time on it, each in its own role) and skips a switch to it itself.
  if (TransactionPipeline.activeFor(tx)) {
    await tx.execute(sql.raw(`SET LOCAL ROLE ${role}`));
    return;
  }
  const acting = actingOf(tx);
  if (acting.role === role) return;
  // `role` is one of the ContextRole constants, never user input.
  await tx.execute(sql.raw(`SET LOCAL ROLE ${role}`));
  acting.role = role;
}

/**
 * Whether statements may be sent on `tx` at the same time by different contexts: a pipelined
 * PostgreSQL transaction, whose statements each carry their role (see {@link asRole}).
 */
export function pipelined(tx: Tx): boolean {
  return TransactionPipeline.activeFor(tx);
}

/**
 * Runs `fn` as `role` inside `tx`: on a pipelined transaction (PostgreSQL) each statement `fn`
 * sends runs as `role` even when other contexts send theirs on `tx` at the same time; otherwise
 * (PGlite) the transaction switches to `role` first, and `fn` must not overlap another context's.
 */
export async function asRole<T>(tx: Tx, role: ContextRole, fn: () => Promise<T>): Promise<T> {
  // Awaited inside: `fn` may return a drizzle query, which runs only when awaited.
  if (TransactionPipeline.activeFor(tx)) return inRole(role, async () => await fn());
  await actAs(tx, role);
  return fn();
}

/**
 * Runs `fn` in a savepoint of `tx`: what it does is undone alone if it throws. Use this rather
 * than `tx.transaction`: a role set inside a savepoint survives its release and is undone by its
 * rollback, and this keeps track of which role is in force either way.
 */
export async function withSavepoint<T>(tx: Tx, fn: (savepoint: Tx) => Promise<T>): Promise<T> {
  const acting = actingOf(tx);
  const before = acting.role;
  try {
    // eslint-disable-next-line no-restricted-syntax -- this is the one place allowed to
    return await tx.transaction((savepoint) => {
      actingAs.set(savepoint, acting);
      return fn(savepoint);
    });
  } catch (err) {
    // Rolled back: the role in force is the one before the savepoint again.
    acting.role = before;
    throw err;
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
