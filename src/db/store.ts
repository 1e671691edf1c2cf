import { and, eq, type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn, PgTable } from "drizzle-orm/pg-core";
import { NotFoundError, VersionConflictError } from "../kernel/index.js";
import type { Database, Orm, Tx } from "./database.js";
import { constraintOf, SqlState, sqlStateOf } from "./errors.js";
import type { ContextRole } from "./context-roles.js";
import { asRole } from "./tx.js";

/**
 * Base of a bounded context's store: every statement it runs is executed as the context's role,
 * inside the caller's transaction for writes, or through a role-bound connection for reads.
 */
export abstract class ContextStore {
  protected readonly db: Database;
  protected readonly role: ContextRole;

  protected constructor(db: Database, role: ContextRole) {
    this.db = db;
    this.role = role;
  }

  /** Runs `fn` as this context inside `tx` (a write, or a read that must see the transaction). */
  protected inTx<T>(tx: Tx, fn: (q: Orm) => Promise<T>): Promise<T> {
    return asRole(tx, this.role, () => fn(tx));
  }

  /**
   * After an optimistic update or delete matched no row: tells whether the row is missing
   * ({@link NotFoundError}) or was at another version ({@link VersionConflictError}).
   */
  protected async missOrConflict(
    q: Orm,
    table: PgTable & { id: AnyPgColumn; version: AnyPgColumn },
    kind: string,
    id: string,
    expectedVersion: number,
    scope?: SQL,
  ): Promise<Error> {
    const [current] = await q
      .select({ version: sql<number>`${table.version}` })
      .from(table)
      .where(and(eq(table.id, id), scope));
    return current
      ? new VersionConflictError(kind, id, expectedVersion, Number(current.version))
      : new NotFoundError(kind, id);
  }

  /** Runs read-only `fn` as this context: in `tx` when given, otherwise on its own. */
  protected reading<T>(tx: Tx | undefined, fn: (q: Orm) => Promise<T>): Promise<T> {
    return tx ? this.inTx(tx, fn) : this.db.read(this.role, fn);
  }
}

/**
 * Runs `fn` and turns a unique violation of one of `constraints` into the error `toError` builds;
 * every other error passes through untouched.
 */
export async function mapUniqueViolation<T>(
  fn: () => Promise<T>,
  constraints: readonly string[],
  toError: (constraint: string, cause: unknown) => Error,
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const constraint = constraintOf(err);
    if (
      sqlStateOf(err) === SqlState.UniqueViolation &&
      constraint &&
      constraints.includes(constraint)
    ) {
      throw toError(constraint, err);
    }
    throw err;
  }
}

/**
 * `ANY` of `ids` (UUIDs) as one array parameter: `column = ${anyUuid(ids)}`. Added to a join of a
 * table with rows sent as JSON (`jsonb_to_recordset`), it lets the planner look the rows up by
 * index: it takes a set-returning function for 100 rows whatever it holds, and for a table of a
 * few thousand rows its generic plan joined a scan of the whole table instead.
 */
export function anyUuid(ids: Iterable<string>): SQL {
  return sql`ANY(${`{${[...ids].join(",")}}`}::uuid[])`;
}

/** The rows of a raw `execute` result, from either driver (both return `{ rows }`). */
export function rowsOf<T>(result: unknown): T[] {
  return (result as { rows?: T[] }).rows ?? [];
}
