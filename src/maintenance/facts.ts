import type { SnapshotQuery } from "../db/index.js";

/**
 * The bounded contexts a backup can be limited to: each is one schema (seed 002: one schema per
 * bounded context, so backup and restore can follow the boundaries).
 */
export const BACKUP_CONTEXTS = [
  "tenancy",
  "inventory",
  "task",
  "audit",
  "platform",
  "runtime",
] as const;
export type BackupContext = (typeof BACKUP_CONTEXTS)[number];

/**
 * Whose writes say how new a database's data is: what tenants asked for and what the control
 * plane did about it. Audit and runtime rows are written by backups and leases themselves, and
 * the platform objects are re-applied from Git on every start, so they do not count.
 */
const DATA_CONTEXTS: readonly string[] = ["tenancy", "inventory", "task"];

const ident = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * The newest write to the data of `schemas` (all of them: tenants, resources and tasks): the
 * greatest `created_at`, `updated_at` or `at`. Null when there is none, or the schemas do not
 * exist (a fresh or destroyed database).
 */
export async function dataAsOf(
  query: SnapshotQuery,
  schemas: readonly string[] = DATA_CONTEXTS,
): Promise<Date | null> {
  const wanted = schemas.filter((s) => DATA_CONTEXTS.includes(s));
  const columns = await query<{ schema: string; table: string; column: string }>(
    `SELECT c.table_schema AS schema, c.table_name AS table, c.column_name AS column
       FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE c.table_schema = ANY($1::text[]) AND t.table_type = 'BASE TABLE'
        AND c.data_type = 'timestamp with time zone'
        AND c.column_name IN ('created_at', 'updated_at', 'at')
      ORDER BY 1, 2, 3`,
    [wanted.length > 0 ? wanted : schemas],
  );
  if (columns.length === 0) return null;
  const parts = columns.map(
    (c) => `SELECT max(${ident(c.column)}) AS v FROM ${ident(c.schema)}.${ident(c.table)}`,
  );
  const [row] = await query<{ at: Date | string | null }>(
    `SELECT max(v) AS at FROM (${parts.join(" UNION ALL ")}) AS newest`,
  );
  return row?.at ? new Date(row.at) : null;
}

/** Rows per `schema.table` of `schemas`, counted exactly. */
export async function tableCounts(
  query: SnapshotQuery,
  schemas: readonly string[],
): Promise<Record<string, number>> {
  const tables = await query<{ schema: string; table: string }>(
    `SELECT schemaname AS schema, tablename AS table FROM pg_tables
      WHERE schemaname = ANY($1::text[]) ORDER BY 1, 2`,
    [schemas],
  );
  if (tables.length === 0) return {};
  const rows = await query<{ name: string; n: string | number }>(
    tables
      .map(
        (t) =>
          `SELECT '${t.schema}.${t.table}' AS name, count(*) AS n FROM ${ident(t.schema)}.${ident(t.table)}`,
      )
      .join(" UNION ALL "),
  );
  return Object.fromEntries(rows.map((r) => [r.name, Number(r.n)]));
}

/** One invariant of the control plane's data, as a query counting the rows that break it. */
interface Invariant {
  /** The schemas it reads; checked only when all of them exist. */
  readonly schemas: readonly string[];
  readonly description: string;
  readonly violations: string;
}

const RESOURCE_KINDS = "('network', 'server', 'cluster', 'bucket')";

const held = (table: string, what: string): Invariant => ({
  schemas: ["inventory"],
  description: `every ${what} held by a resource is held by one that exists`,
  violations: `SELECT count(*) AS n FROM inventory.${table} a
                WHERE a.owner_id IS NOT NULL AND a.owner_kind IN ${RESOURCE_KINDS}
                  AND NOT EXISTS (SELECT 1 FROM inventory.resources r WHERE r.id = a.owner_id)`,
});

/**
 * What must hold after a restore (or at any time): no allocation twice or leaked, every task
 * with its history, the audit log still append-only.
 */
export const INVARIANTS: readonly Invariant[] = [
  {
    schemas: ["inventory"],
    description: "no two allocated prefixes of a datacenter overlap",
    violations: `SELECT count(*) AS n FROM inventory.ip_blocks a
                   JOIN inventory.ip_blocks b
                     ON a.datacenter_id = b.datacenter_id AND a.id < b.id AND a.prefix && b.prefix
                  WHERE a.owner_id IS NOT NULL AND b.owner_id IS NOT NULL`,
  },
  {
    schemas: ["inventory"],
    description: "no resource holds more VLANs than one",
    violations: `SELECT count(*) AS n FROM (SELECT owner_id FROM inventory.vlans
                   WHERE owner_id IS NOT NULL GROUP BY owner_id HAVING count(*) > 1) AS twice`,
  },
  held("vlans", "VLAN"),
  held("ip_blocks", "prefix"),
  held("servers", "server"),
  {
    schemas: ["task"],
    description: "every task has the history of its creation",
    violations: `SELECT count(*) AS n FROM task.tasks t WHERE NOT EXISTS
                   (SELECT 1 FROM task.task_events e WHERE e.task_id = t.id AND e.verb = 'created')`,
  },
  {
    schemas: ["task"],
    description: "every finished task has the history of how it finished",
    violations: `SELECT count(*) AS n FROM task.tasks t
                  WHERE t.state IN ('succeeded', 'failed', 'cancelled') AND NOT EXISTS
                   (SELECT 1 FROM task.task_events e WHERE e.task_id = t.id AND e.verb = t.state)`,
  },
  {
    schemas: ["audit"],
    description: "the audit log refuses UPDATE, DELETE and TRUNCATE",
    violations: `SELECT 2 - count(*) AS n FROM pg_trigger
                  WHERE tgrelid = 'audit.records'::regclass AND NOT tgisinternal AND tgenabled <> 'D'
                    AND tgname IN ('records_append_only', 'records_no_truncate')`,
  },
];

/** The outcome of checking one invariant. */
export interface InvariantResult {
  readonly description: string;
  /** Rows breaking it; 0 when it holds. */
  readonly violations: number;
}

/** Checks the invariants of the data in `schemas` (those of other contexts are skipped). */
export async function checkInvariants(
  query: SnapshotQuery,
  schemas: readonly string[],
): Promise<InvariantResult[]> {
  const results: InvariantResult[] = [];
  for (const invariant of INVARIANTS) {
    if (!invariant.schemas.every((s) => schemas.includes(s))) continue;
    const [row] = await query<{ n: string | number }>(invariant.violations);
    results.push({ description: invariant.description, violations: Number(row?.n ?? 0) });
  }
  return results;
}
