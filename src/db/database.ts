import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";

/** A drizzle database over either driver; every context's queries are written against this. */
export type Orm = PgDatabase<PgQueryResultHKT, Record<string, never>>;

/** Which engine serves the database: a PostgreSQL server, or PGlite embedded in the process. */
export type Dialect = "postgres" | "pglite";

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
  readonly orm: Orm;
  /** Runs one parameterised statement outside any transaction and returns its rows. */
  query<Row extends Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<Row[]>;
  /** Calls `handler` with the payload of every `NOTIFY` on `channel` until unlistened. */
  listen(channel: string, handler: (payload: string) => void): Promise<Unlisten>;
  /** Resolves when the database answers a trivial query. */
  ping(): Promise<void>;
  /** Closes every connection; pending queries finish first. */
  close(): Promise<void>;
}
