import { type SQL, sql } from "drizzle-orm";
import type { AnyPgColumn } from "drizzle-orm/pg-core";
import type { LabelRequirement } from "../kernel/index.js";

/**
 * Translates label requirements into a SQL condition on a `jsonb` labels column, using `@>` and
 * `?` so a GIN index on the column can serve it.
 */
export function labelCondition(
  column: AnyPgColumn,
  requirements: readonly LabelRequirement[],
): SQL | undefined {
  if (requirements.length === 0) return undefined;
  const parts = requirements.map((r) => {
    switch (r.op) {
      case "=":
        return sql`${column} @> ${JSON.stringify({ [r.key]: r.value })}::jsonb`;
      case "!=":
        return sql`NOT (${column} @> ${JSON.stringify({ [r.key]: r.value })}::jsonb)`;
      case "in":
        return sql`(${sql.join(
          r.values.map((v) => sql`${column} @> ${JSON.stringify({ [r.key]: v })}::jsonb`),
          sql` OR `,
        )})`;
      case "notin":
        return sql`NOT (${sql.join(
          r.values.map((v) => sql`${column} @> ${JSON.stringify({ [r.key]: v })}::jsonb`),
          sql` OR `,
        )})`;
      case "exists":
        return sql`${column} ? ${r.key}`;
      case "!exists":
        return sql`NOT (${column} ? ${r.key})`;
    }
  });
  return sql.join(parts, sql` AND `);
}
