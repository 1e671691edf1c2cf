import { sql } from "drizzle-orm";
import { check, jsonb, pgSchema, text, unique, uuid } from "drizzle-orm/pg-core";
import { timestamps, versionColumn } from "../../db/index.js";

/** The tenancy context: tenants, their projects, and the environments inside projects. */
export const tenancy = pgSchema("tenancy");

const name = () => text().notNull();
const labels = () => jsonb().$type<Record<string, string>>().notNull().default({});

export const tenants = tenancy.table(
  "tenants",
  {
    id: uuid().primaryKey(),
    name: name().unique(),
    displayName: text().notNull().default(""),
    labels: labels(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [check("tenants_name_dns_label", sql`${t.name} ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'`)],
);

export const projects = tenancy.table(
  "projects",
  {
    id: uuid().primaryKey(),
    tenantId: uuid()
      .notNull()
      .references(() => tenants.id, { onDelete: "restrict" }),
    name: name(),
    displayName: text().notNull().default(""),
    labels: labels(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    unique("projects_tenant_name").on(t.tenantId, t.name),
    check("projects_name_dns_label", sql`${t.name} ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'`),
  ],
);

export const environments = tenancy.table(
  "environments",
  {
    id: uuid().primaryKey(),
    tenantId: uuid().notNull(),
    projectId: uuid()
      .notNull()
      .references(() => projects.id, { onDelete: "restrict" }),
    name: name(),
    /** The datacenter the environment's resources are placed in (a `Datacenter` name). */
    datacenterId: text().notNull(),
    labels: labels(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    unique("environments_project_name").on(t.projectId, t.name),
    check("environments_name_dns_label", sql`${t.name} ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'`),
  ],
);
