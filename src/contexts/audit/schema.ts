import { bigint, index, jsonb, pgSchema, text, uuid } from "drizzle-orm/pg-core";
import { timestamptz } from "../../db/index.js";

/**
 * The audit context: who changed what, when, in which correlation. Append-only: the database
 * refuses UPDATE, DELETE and TRUNCATE on it (triggers in the migration).
 */
export const audit = pgSchema("audit");

export const records = audit.table(
  "records",
  {
    id: bigint({ mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    at: timestamptz().notNull().defaultNow(),
    actor: text().notNull(),
    tenantId: uuid(),
    /**
     * The project the record is about (a project, or anything inside one); null for what belongs
     * to no project — the tenant itself, its quotas, the platform — and for records written
     * before projects were recorded. A project-scoped token sees only its project's records.
     */
    projectId: uuid(),
    datacenterId: text().notNull(),
    /** `network.create`, `dead_letter.replay`, … */
    action: text().notNull(),
    resourceKind: text().notNull(),
    resourceId: text().notNull(),
    before: jsonb().$type<Record<string, unknown>>(),
    after: jsonb().$type<Record<string, unknown>>(),
    correlationId: text().notNull(),
  },
  (t) => [
    index("records_resource").on(t.resourceKind, t.resourceId, t.at),
    index("records_tenant_at").on(t.tenantId, t.at),
    index("records_tenant_project").on(t.tenantId, t.projectId, t.id),
    index("records_actor_at").on(t.actor, t.at),
  ],
);
