// Which SQL statements a benchmark's database time went to, from pg_stat_statements (loaded by
// hack/postgres.sh): reset before the measured part, read after it.
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Database } from "../../src/db/index.js";
import type { Hotspot } from "./profile.js";

/** Starts counting from zero for the current database (needs a superuser connection). */
export async function resetStatements(admin: Database): Promise<void> {
  await admin.query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  await admin.query(
    "SELECT pg_stat_statements_reset(0, (SELECT oid FROM pg_database WHERE datname = current_database()), 0)",
  );
}

/**
 * The statements of the current database that took the most execution time since the reset.
 * With `dump`, every statement with its calls is also written to
 * `.cache/bench/sql/<dump>.txt`, most called first: where a count per item comes from.
 */
export async function topStatements(admin: Database, top = 8, dump?: string): Promise<Hotspot[]> {
  if (dump) {
    const all = await admin.query<{ query: string; calls: string; ms: string; plan: string }>(
      `/* bench */ SELECT query, calls, round(total_exec_time::numeric, 1) AS ms,
              round(total_plan_time::numeric, 1) AS plan FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND query NOT ILIKE '%pg_stat_statements%' AND query NOT LIKE '/* bench */%'
        ORDER BY calls DESC`,
    );
    const dir = join(import.meta.dirname, "../../.cache/bench/sql");
    await mkdir(dir, { recursive: true });
    await writeFile(
      join(dir, `${dump}.txt`),
      all
        .map(
          (r) =>
            `${r.calls}\t${r.ms} ms\t${r.plan} ms planning\t${r.query.replace(/\s+/g, " ").slice(0, 300)}`,
        )
        .join("\n"),
    );
  }
  const rows = await admin.query<{ query: string; ms: string; calls: string; total: string }>(
    `SELECT query, total_exec_time AS ms, calls,
            sum(total_exec_time) OVER () AS total
       FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT ILIKE '%pg_stat_statements%' AND query NOT LIKE '/* bench */%'
      ORDER BY total_exec_time DESC
      LIMIT $1`,
    [top],
  );
  return rows.map((r) => ({
    name: `${r.query.replace(/\s+/g, " ").slice(0, 160)} (${r.calls} calls)`,
    ms: Math.round(Number(r.ms)),
    percent: Math.round((1000 * Number(r.ms)) / Number(r.total)) / 10,
  }));
}

/**
 * SQL statements run in the current database since the reset, the benchmark's own queries
 * (those starting with a `/* bench *\/` comment) left out.
 */
export async function statementsRun(
  admin: Database,
  options: { sentOnly?: boolean } = {},
): Promise<number> {
  // pg_stat_statements.track = all (hack/postgres.sh) also counts what runs inside them:
  // triggers' statements and foreign-key checks. `sentOnly` counts what the processes sent.
  const [row] = await admin.query<{ n: string | null }>(
    `/* bench */ SELECT sum(calls) AS n FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query NOT LIKE '/* bench */%' AND query NOT ILIKE '%pg_stat_statements%'
        ${options.sentOnly ? "AND toplevel" : ""}`,
  );
  return Number(row?.n ?? 0);
}

/** Transactions committed in the current database so far (PostgreSQL's cumulative count). */
export async function commitsSoFar(admin: Database): Promise<number> {
  // Backends report their counts when idle, at most once a second: wait for the last ones.
  await new Promise((r) => setTimeout(r, 1_500));
  const [row] = await admin.query<{ n: string }>(
    "/* bench */ SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()",
  );
  return Number(row?.n ?? 0);
}
