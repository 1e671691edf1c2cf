import type { Snapshot, SnapshotOptions } from "./backup.js";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/** A drizzle database over either driver; every context's queries are written against this. */
export type Orm = PgDatabase<PgQueryResultHKT, Record<string, never>>;

/** Which engine serves the database: a PostgreSQL server, or PGlite embedded in the process. */
export type Dialect = "postgres" | "pglite";

/** A drizzle transaction over either driver. */
export type Tx = Parameters<Parameters<Orm["transaction"]>[0]>[0];

/** Isolation of a transaction; PostgreSQL's default is read committed. */
export type IsolationLevel = "read committed" | "repeatable read" | "serializable";

/** Cancels a `LISTEN` registered with {@link Database.listen}. */
export type Unlisten = () => Promise<void>;

/**
 * The PostgreSQL port of the control plane: one of a server (through `pg`) or an embedded PGlite
 * (for `npm run dev`). Callers do not know which.
 */
export interface Database {
  readonly dialect: Dialect;
  /** Where it is, safe to log: `127.0.0.1:5432/dataverket` or `pglite:/path`. */
  readonly target: string;
  /**
   * Runs `fn` in one transaction: everything it does commits together or not at all. Statements
   * inside run as the login role until a context switches with `actAs`.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, isolationLevel?: IsolationLevel): Promise<T>;
  /**
   * Runs work as a context's role (see `ContextRole`) outside a transaction, so a context can
   * read its own tables and no other's: each statement is a transaction of its own. For reads,
   * and for a write that is one statement. The role stays on the pooled connection, so a switch
   * costs a statement only when the connection served another context last.
   */
  read<T>(role: string, fn: (orm: Orm) => Promise<T>): Promise<T>;
  /** Runs one parameterised statement outside any transaction and returns its rows. */
  query<Row extends Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]>;
  /** Calls `handler` with the payload of every `NOTIFY` on `channel` until unlistened. */
  listen(channel: string, handler: (payload: string) => void): Promise<Unlisten>;
  /**
   * Resolves once every `NOTIFY` of a transaction committed before the call has been handed to
   * this process's {@link listen} handlers, with the epoch of the LISTEN connection: a new epoch
   * means the connection was lost and opened again, and notifications may have been missed. A
   * cache kept by notifications answers as fresh as a read after it. PostgreSQL servers only.
   *
   * @throws when the process cannot LISTEN now (a replica, or the database unreachable).
   */
  sync?(): Promise<number>;
  /**
   * Applies the pending migrations of `folder` in one transaction (all or nothing), serialised
   * against other processes migrating the same database.
   *
   * @throws {MigrationError} when a statement fails; nothing was applied.
   */
  migrate(folder: string): Promise<void>;
  /** Connections of the pool (PostgreSQL only): in total, idle, and callers waiting for one. */
  poolStats?(): { total: number; idle: number; waiting: number; max: number };
  /**
   * Starts a consistent snapshot of the database, taken while it is in use: `pg_dump` of a
   * server (all of it or some schemas), a copy of PGlite's data directory (always all of it).
   * Resolves once the copy has begun.
   *
   * @throws {BackupError} when the dump tool is missing or fails (also through `done`), or
   *   schemas are asked of PGlite.
   */
  snapshot<Facts>(options: SnapshotOptions<Facts>): Promise<Snapshot<Facts>>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /** Closes every connection; pending queries finish first. */
  close(): Promise<void>;
}
