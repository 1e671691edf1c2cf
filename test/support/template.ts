// Builds the migrated template database the integration tier clones for every test file.
// Named by a hash of the migrations, so a schema change builds a new one and old ones are
// dropped. Also creates `dv_app`, a NOINHERIT login that is a member of every context role and
// holds no privilege of its own: a context operation that forgets to switch to its role fails.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { connectPostgres, migrationsFolder, runMigrations } from "../../src/db/index.js";
import { createLogger } from "../../src/observability/index.js";
import { TEST_DATABASE_URL } from "./services.js";

/** The login role the contract tests connect as. */
export const APP_ROLE = "dv_app";

const CONTEXT_ROLES = [
  "dv_tenancy",
  "dv_inventory",
  "dv_task",
  "dv_audit",
  "dv_platform",
  "dv_runtime",
  "dv_simulator",
];

function migrationsHash(): string {
  const hash = createHash("sha256");
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else hash.update(entry.name).update(readFileSync(path));
    }
  };
  walk(migrationsFolder());
  return hash.digest("hex").slice(0, 12);
}

/** URL of database `name` on the test server (or on `server`), as `user`. */
export function databaseUrl(name: string, user = "postgres", server = TEST_DATABASE_URL): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  url.username = user;
  return url.toString();
}

/** Makes the `dv_app` login a member of every context role (roles are cluster-wide). */
async function grantAppRole(admin: pg.Client): Promise<void> {
  await admin.query(`
    DO $$ BEGIN
      CREATE ROLE ${APP_ROLE} LOGIN NOINHERIT;
    EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
  await admin.query(`GRANT ${CONTEXT_ROLES.join(", ")} TO ${APP_ROLE}`);
}

/**
 * Creates (once per migration set) and returns the name of the template database, on the test
 * server or on `server` (the superuser URL of another one).
 */
export async function ensureTemplate(server = TEST_DATABASE_URL): Promise<string> {
  const name = `dv_tpl_${migrationsHash()}`;
  const admin = new pg.Client(server);
  await admin.connect();
  try {
    const { rows } = await admin.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'dv_tpl_%' OR datname LIKE 'dv_test_%'",
    );
    // Leftovers of earlier runs: old templates and test databases of crashed runs. A database
    // something is still connected to belongs to a run in progress (another `vitest` on the same
    // server): it is left alone.
    for (const { datname } of rows) {
      if (datname === name) continue;
      try {
        await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(datname)} IS_TEMPLATE false`);
        await admin.query(`DROP DATABASE ${pg.escapeIdentifier(datname)}`);
      } catch (err) {
        // In use (55006), or dropped meanwhile by another run's clean-up (3D000).
        const code = (err as { code?: string }).code;
        if (code !== "55006" && code !== "3D000") throw err;
      }
    }
    if (rows.some((r) => r.datname === name)) {
      await grantAppRole(admin);
      return name;
    }

    const building = `${name}_build`;
    await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(building)} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(building)}`);
    const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
    const db = await connectPostgres({
      url: databaseUrl(building, "postgres", server),
      poolMax: 2,
      log,
    });
    try {
      await runMigrations(db);
    } finally {
      await db.close();
    }
    await grantAppRole(admin);
    await admin.query(
      `ALTER DATABASE ${pg.escapeIdentifier(building)} RENAME TO ${pg.escapeIdentifier(name)}`,
    );
    await admin.query(`ALTER DATABASE ${pg.escapeIdentifier(name)} IS_TEMPLATE true`);
    return name;
  } finally {
    await admin.end();
  }
}
