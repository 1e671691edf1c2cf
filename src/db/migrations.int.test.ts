// The same migrations on a PostgreSQL server and on PGlite: they apply, they are idempotent, the
// database-enforced invariants hold on both, and a failing migration leaves nothing behind.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { TEST_DATABASE_URL } from "../../test/support/services.js";
import { databaseUrl } from "../../test/support/template.js";
import {
  connectPostgres,
  type Database,
  MigrationError,
  migrationsFolder,
  openPglite,
  runMigrations,
  SqlState,
  sqlStateOf,
} from "./index.js";

const silent = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const SCHEMAS = ["audit", "inventory", "platform", "runtime", "task", "tenancy"];

/** A copy of the migrations with one more that creates a table and then fails. */
function migrationsWithABrokenOne(): string {
  const dir = mkdtempSync(join(tmpdir(), "dv-migrations-"));
  cpSync(migrationsFolder(), dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as {
    entries: { idx: number; version: string; when: number; tag: string; breakpoints: boolean }[];
  };
  const last = journal.entries[journal.entries.length - 1];
  if (!last) throw new Error("no migrations");
  journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1000, tag: "9999_broken" });
  writeFileSync(journalPath, JSON.stringify(journal));
  writeFileSync(
    join(dir, "9999_broken.sql"),
    'CREATE TABLE "tenancy"."half_done" (id int);\n--> statement-breakpoint\nSELECT 1 / 0;\n',
  );
  return dir;
}

interface Engine {
  readonly name: string;
  open(): Promise<Database>;
}

const created: string[] = [];
const engines: Engine[] = [
  {
    name: "PostgreSQL server",
    async open() {
      const name = `dv_test_mig_${created.length}_${process.pid}`;
      const admin = new pg.Client(TEST_DATABASE_URL);
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      created.push(name);
      return connectPostgres({ url: databaseUrl(name), poolMax: 2, log: silent });
    },
  },
  { name: "PGlite", open: () => openPglite() },
];

afterAll(async () => {
  const admin = new pg.Client(TEST_DATABASE_URL);
  await admin.connect();
  for (const name of created) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe.each(engines)("migrations on $name", (engine) => {
  let db: Database;
  beforeAll(async () => {
    db = await engine.open();
    await runMigrations(db);
  });
  afterAll(async () => db.close());

  it("create one schema per bounded context, and running again changes nothing", async () => {
    const schemas = await db.query<{ nspname: string }>(
      "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1) ORDER BY 1",
      [SCHEMAS],
    );
    expect(schemas.map((s) => s.nspname)).toEqual(SCHEMAS);
    const before = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations",
    );
    await runMigrations(db);
    const after = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations",
    );
    expect(after).toEqual(before);
  });

  it("make the database refuse overlapping IP pools of one datacenter", async () => {
    await db.query(
      "INSERT INTO inventory.datacenters (name, site, failure_domain) VALUES ('dcx', 's', 'f')",
    );
    await db.query(
      "INSERT INTO inventory.network_pools (name, datacenter_id) VALUES ('np', 'dcx')",
    );
    await db.query(
      "INSERT INTO inventory.ip_pools (id, network_pool, datacenter_id, cidr) VALUES (gen_random_uuid(), 'np', 'dcx', '10.0.0.0/16')",
    );
    const overlap = db.query(
      "INSERT INTO inventory.ip_pools (id, network_pool, datacenter_id, cidr) VALUES (gen_random_uuid(), 'np', 'dcx', '10.0.128.0/17')",
    );
    await expect(overlap).rejects.toSatisfy(
      (err) => sqlStateOf(err) === SqlState.ExclusionViolation,
    );
  });

  it("make audit records append-only, even for the owner", async () => {
    await db.query(
      "INSERT INTO audit.records (actor, datacenter_id, action, resource_kind, resource_id, correlation_id) VALUES ('a', 'dc1', 'x.create', 'x', '1', 'c')",
    );
    await expect(db.query("UPDATE audit.records SET actor = 'b'")).rejects.toThrow(/append-only/);
    await expect(db.query("DELETE FROM audit.records")).rejects.toThrow(/append-only/);
    await expect(db.query("TRUNCATE audit.records")).rejects.toThrow(/append-only/);
    expect(await db.query("SELECT actor FROM audit.records")).toEqual([{ actor: "a" }]);
  });

  it("leave the database as it was when one migration fails", async () => {
    const fresh = await engine.open();
    try {
      await expect(runMigrations(fresh, migrationsWithABrokenOne())).rejects.toThrow(
        MigrationError,
      );
      const tables = await fresh.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = ANY($1)",
        [SCHEMAS],
      );
      // Not the half-done table, and none of the good migrations before it either: one transaction.
      expect(tables).toEqual([{ n: 0 }]);
      const applied = await fresh.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations",
      );
      expect(applied).toEqual([{ n: 0 }]);
      // And it recovers: the good migrations still apply afterwards.
      await runMigrations(fresh);
      expect(
        await fresh.query("SELECT 1 AS ok FROM pg_namespace WHERE nspname = 'inventory'"),
      ).toEqual([{ ok: 1 }]);
    } finally {
      await fresh.close();
    }
  });
});
