// Statements the hot paths send thousands of times, as named (prepared) statements: PostgreSQL
// parses each once per connection and, once its generic plan is as good as a custom one, stops
// planning it. In a burst of 2,000 networks the database spent 4.8 s planning against 11 s
// executing; the quota charge alone planned for 0.7 ms a call.
import {
  DrizzleQueryError,
  fillPlaceholders,
  getTableColumns,
  is,
  type SQL,
  type Table,
} from "drizzle-orm";
import { NodePgSession } from "drizzle-orm/node-postgres";
import type { PgDialect } from "drizzle-orm/pg-core";
import pg from "pg";
import type { Orm } from "./database.js";

/**
 * Runs `query` as the statement `name` on the connection of `q` (a transaction or a bound
 * reader) and returns the driver's result, as `q.execute` does. The text of `query` must be the
 * same on every call with the same name (only its parameters may differ): a name is bound to
 * one text per connection.
 */
export function executeNamed(q: Orm, name: string, query: SQL): Promise<unknown> {
  // drizzle keeps the dialect (with the casing of column names) on the instance but does not
  // declare it; the session's prepareQuery is its public way to name a statement.
  const dialect = (q as unknown as { dialect: PgDialect }).dialect;
  return q._.session.prepareQuery(dialect.sqlToQuery(query), undefined, name, false).execute();
}

/** Decodes a driver value to what drizzle would return for a column (`mapFromDriverValue`). */
interface Decoder {
  mapFromDriverValue(value: unknown): unknown;
}

// What drizzle's node-postgres session reads as text and decodes itself (timestamps, dates,
// intervals and their arrays); every other type as node-postgres parses it. The same parsers
// its prepared queries use, so a row read here is the row drizzle would have returned.
const AS_TEXT: ReadonlySet<number> = new Set([
  pg.types.builtins.TIMESTAMPTZ,
  pg.types.builtins.TIMESTAMP,
  pg.types.builtins.DATE,
  pg.types.builtins.INTERVAL,
  1231,
  1115,
  1185,
  1187,
  1182,
]);
const asText = (value: unknown): unknown => value;
const DRIZZLE_TYPES = {
  getTypeParser: (typeId: number, format?: "text" | "binary"): ((value: string) => unknown) =>
    AS_TEXT.has(typeId)
      ? asText
      : (pg.types.getTypeParser(typeId, format) as (value: string) => unknown),
};

/** A select of whole rows of one table whose parameters are placeholders, by name. */
interface RowSelect {
  toSQL(): { sql: string; params: unknown[] };
  prepare(name: string): { execute(values: Record<string, unknown>): Promise<unknown[]> };
}

/**
 * A statement that reads whole rows of one table (`select().from(table)` with placeholders),
 * sent as the named statement `name` and returned as drizzle returns them. On a node-postgres
 * connection it goes to the driver at once, rows as arrays decoded column by column with the
 * columns' own decoders: what drizzle's prepared query does, without the layers around it (per
 * read they cost more CPU than the rest of an API `GET`). On any other driver (PGlite) it is
 * drizzle's prepared query. Errors are drizzle's `DrizzleQueryError` either way.
 */
export class NamedRowRead<Row> {
  readonly #name: string;
  readonly #build: (q: Orm) => RowSelect;
  readonly #decoders: readonly (readonly [key: string, decoder: Decoder])[];
  readonly #runs = new WeakMap<Orm, (values: Record<string, unknown>) => Promise<Row[]>>();

  constructor(name: string, table: Table, build: (q: Orm) => RowSelect) {
    this.#name = name;
    this.#build = build;
    this.#decoders = Object.entries(getTableColumns(table)).map(
      ([key, column]) => [key, column as Decoder] as const,
    );
  }

  /** Runs it on `q` (a bound reader or a transaction) with `values` for its placeholders. */
  execute(q: Orm, values: Record<string, unknown>): Promise<Row[]> {
    let run = this.#runs.get(q);
    if (!run) {
      run = this.#runner(q);
      this.#runs.set(q, run);
    }
    return run(values);
  }

  #runner(q: Orm): (values: Record<string, unknown>) => Promise<Row[]> {
    const select = this.#build(q);
    const session = q._.session;
    if (!is(session, NodePgSession)) {
      const prepared = select.prepare(this.#name);
      return (values) => prepared.execute(values) as Promise<Row[]>;
    }
    const client = (session as unknown as { client: pg.ClientBase | pg.Pool }).client;
    const { sql: text, params } = select.toSQL();
    const decoders = this.#decoders;
    const config: pg.QueryArrayConfig = {
      name: this.#name,
      text,
      rowMode: "array",
      types: DRIZZLE_TYPES,
    };
    const decode = (raw: unknown[]): Row => {
      const row: Record<string, unknown> = {};
      for (let i = 0; i < decoders.length; i++) {
        const [key, decoder] = decoders[i] as (typeof decoders)[number];
        const value = raw[i];
        row[key] = value === null ? null : decoder.mapFromDriverValue(value);
      }
      return row as Row;
    };
    return (values) => {
      const bound = fillPlaceholders(params, values);
      return client.query<unknown[]>(config, bound).then(
        (result) => result.rows.map(decode),
        (err: unknown) => {
          throw new DrizzleQueryError(text, bound, err as Error);
        },
      );
    };
  }
}
