// Statements the hot paths send thousands of times, as named (prepared) statements: PostgreSQL
// parses each once per connection and, once its generic plan is as good as a custom one, stops
// planning it. In a burst of 2,000 networks the database spent 4.8 s planning against 11 s
// executing; the quota charge alone planned for 0.7 ms a call.
import type { SQL } from "drizzle-orm";
import type { PgDialect } from "drizzle-orm/pg-core";
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
