import { bigint, jsonb, pgSchema, primaryKey, text } from "drizzle-orm/pg-core";
import { timestamps, versionColumn } from "../../db/index.js";

/**
 * The platform context: platform configuration synced from the custom resources in Git
 * (`MachineClass`, `PlatformPolicy`, `RecoveryPolicy`, and the spec of every kind as applied).
 */
export const platform = pgSchema("platform");

export const objects = platform.table(
  "objects",
  {
    kind: text().notNull(),
    name: text().notNull(),
    generation: bigint({ mode: "number" }).notNull(),
    spec: jsonb().$type<Record<string, unknown>>().notNull(),
    status: jsonb().$type<Record<string, unknown>>().notNull().default({}),
    observedGeneration: bigint({ mode: "number" }).notNull().default(0),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [primaryKey({ name: "objects_pkey", columns: [t.kind, t.name] })],
);
