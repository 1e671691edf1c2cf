import { integer, timestamp } from "drizzle-orm/pg-core";

/** `timestamptz` read as a JavaScript Date; every time in the database is UTC by type. */
export const timestamptz = () => timestamp({ withTimezone: true, mode: "date" });

/** The optimistic-concurrency token of a mutable row: starts at 1, +1 on every write. */
export const versionColumn = () => integer().notNull().default(1);

/** `created_at` and `updated_at`, set by the database's clock. */
export const timestamps = () => ({
  createdAt: timestamptz().notNull().defaultNow(),
  updatedAt: timestamptz().notNull().defaultNow(),
});
