// A fresh database per test file, cloned from the migrated template (see template.ts).
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { connectPostgres, type Database } from "../../src/db/index.js";
import { createLogger } from "../../src/observability/index.js";
import { TEST_DATABASE_URL } from "./services.js";
import { APP_ROLE, databaseUrl } from "./template.js";

declare module "vitest" {
  export interface ProvidedContext {
    dvTemplateDatabase: string;
  }
}

/** A database of its own for one test file. */
export interface TestDatabase {
  readonly name: string;
  /** Connected as `dv_app`: may act only as the context roles. */
  readonly db: Database;
  /** Connected as the superuser, for assertions on raw tables. */
  readonly admin: Database;
  /** Another connection as `dv_app`, with its own pool size (concurrency tests). */
  connect(poolMax: number): Promise<Database>;
  /** The database's URL, as the superuser (or as `user`): what a `dv` process is given. */
  url(user?: string): string;
  /**
   * Closes this file's own connections (`db`, `admin` and every `connect`) now, for a test of a
   * program that counts who is connected (`dv db restore` refuses a database in use): idle pool
   * connections otherwise stay open until the pool's idle timeout, so whether they are still
   * there depends on how fast the test got to that point. `drop` then only drops.
   */
  release(): Promise<void>;
  drop(): Promise<void>;
}

const silent = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });

/**
 * Clones the template into a new database and connects to it. On another server than the test
 * server (`server`, its superuser URL), the template is the one `ensureTemplate(server)` made.
 */
export async function createTestDatabase(
  options: { server?: string; template?: string } = {},
): Promise<TestDatabase> {
  const server = options.server ?? TEST_DATABASE_URL;
  const template = options.template ?? inject("dvTemplateDatabase");
  const name = `dv_test_${randomBytes(6).toString("hex")}`;
  const url = (user = "postgres") => databaseUrl(name, user, server);
  const client = new pg.Client(server);
  await client.connect();
  try {
    await client.query(
      `CREATE DATABASE ${pg.escapeIdentifier(name)} TEMPLATE ${pg.escapeIdentifier(template)}`,
    );
  } finally {
    await client.end();
  }
  const extra: Database[] = [];
  const connect = async (poolMax: number): Promise<Database> => {
    const db = await connectPostgres({ url: url(APP_ROLE), poolMax, log: silent });
    extra.push(db);
    return db;
  };
  const db = await connectPostgres({ url: url(APP_ROLE), poolMax: 10, log: silent });
  const admin = await connectPostgres({ url: url(), poolMax: 2, log: silent });
  let released: Promise<unknown> | undefined;
  const release = async (): Promise<void> => {
    released ??= Promise.all([db.close(), admin.close(), ...extra.map((d) => d.close())]);
    await released;
  };
  return {
    name,
    db,
    admin,
    connect,
    url,
    release,
    async drop() {
      await release();
      const dropper = new pg.Client(server);
      await dropper.connect();
      try {
        await dropper.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}
