// `dv db status|backup|restore` end to end, as an operator types them: a backup directory (snapshot
// and manifest) taken while the control plane runs, a change made after it, the control plane
// stopped, the backup restored, and the change gone — against a real PostgreSQL server (pg_dump,
// pg_restore, psql) and against the embedded PGlite of `npm run dev`. Restores refused while the
// database is in use, over newer data, or of a damaged or edited backup change nothing.
import { createHash } from "node:crypto";
import {
  cpSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { type DvProcess, runDv, startDv } from "../../../test/support/process.js";
import { databaseUrl } from "../../../test/support/template.js";
import { freePort } from "../../dev/index.js";

interface Status {
  engine: string;
  role: string;
  serverVersion: string;
  migrations: { applied: number; available: number };
  schemas: { name: string; tables: number }[];
  connections: { byApplication: { name: string; count: number }[] };
  lastBackup: {
    id: string;
    state: string;
    sha256: string;
    bytes: number;
    finishedAt: string;
  } | null;
  backups: { id: string; state: string; error: string | null }[];
  restores: {
    backupId: string | null;
    sha256: string;
    backupTakenAt: string | null;
    scope: string;
    violations: string[];
  }[];
  recovery: {
    context: string;
    policy: { rpoClass: string; failover: string } | null;
    lastBackup: { id: string; scope: string } | null;
    withinRpo: boolean | null;
    promotion: { state: string; reason: string };
  }[];
}

interface Manifest {
  id: string;
  kind: string;
  scope: string;
  schemas: string[];
  takenAt: string;
  finishedAt: string;
  dataAsOf: string | null;
  tables: Record<string, number>;
  files: { name: string; bytes: number; sha256: string }[];
}

/** Reads with a connection of its own, closed before any restore (which counts who is connected). */
async function readAdmin<T>(database: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(databaseUrl(database));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const tenantsIn = (database: string) =>
  readAdmin(database, async (c) =>
    (await c.query<{ name: string }>("SELECT name FROM tenancy.tenants ORDER BY name")).rows.map(
      (r) => r.name,
    ),
  );

const countIn = (database: string, table: string) =>
  readAdmin(database, async (c) =>
    Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n),
  );

const sha256 = (file: string) => createHash("sha256").update(readFileSync(file)).digest("hex");

/** A `dv dev` on the given database, and the CLI environment that talks to it. */
async function startDev(
  dir: string,
  extra: Record<string, string>,
): Promise<{ dev: DvProcess; cli: Record<string, string> }> {
  const port = await freePort();
  const env = {
    DV_HTTP_PORT: String(port),
    DV_NATS_PORT: String(await freePort()),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "warn",
    ...extra,
  };
  const dev = startDv(["dev"], env);
  const banner = await dev.waitFor(/export DV_TOKEN=(\S+)/, 90_000);
  return {
    dev,
    cli: { DV_SERVER: `http://127.0.0.1:${port}`, DV_TOKEN: banner[1] ?? "", ...extra },
  };
}

async function stop(dev: DvProcess): Promise<void> {
  if (dev.child.exitCode === null && dev.child.signalCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
}

async function tenantNames(cli: Record<string, string>): Promise<string[]> {
  const listed = await runDv(["get", "tenants", "-o", "json"], cli);
  expect(listed.code, listed.stderr).toBe(0);
  return (JSON.parse(listed.stdout) as { items: { metadata: { name: string } }[] }).items
    .map((t) => t.metadata.name)
    .sort();
}

async function status(cli: Record<string, string>): Promise<Status> {
  const shown = await runDv(["db", "status", "-o", "json"], cli);
  expect(shown.code, shown.stderr).toBe(0);
  return JSON.parse(shown.stdout) as Status;
}

describe("dv db against a PostgreSQL server", () => {
  let t: TestDatabase;
  let dir: string;
  let dbEnv: Record<string, string>;
  let dev: DvProcess;
  let cli: Record<string, string>;

  beforeAll(async () => {
    t = await createTestDatabase();
    // This file reads with connections of its own (readAdmin); the pools of the test database
    // would stay connected, idle, until their idle timeout — and a restore refused the database
    // as "in use by dataverket ×2" whenever the test reached it sooner (a fast machine).
    await t.release();
    dir = mkdtempSync(join(tmpdir(), "dv-db-"));
    // The control plane's login owns its objects; as the dump's owner it can replay it.
    dbEnv = { DATABASE_URL: databaseUrl(t.name) };
    ({ dev, cli } = await startDev(dir, dbEnv));
  }, 120_000);

  afterAll(async () => {
    await stop(dev);
    await t.drop();
  });

  it("backs up while running, refuses to restore under it, and restores once it is stopped", async () => {
    expect((await runDv(["create", "tenant", "before"], cli)).code).toBe(0);

    const backup = await runDv(["db", "backup", dir], cli);
    expect(backup.code, backup.stderr).toBe(0);
    const path = /written to (\S+)/.exec(backup.stdout)?.[1] ?? "";
    expect(path).toMatch(/\/dataverket-\d{8}T\d{6}Z$/);
    expect(readdirSync(path).sort()).toEqual(["database.dump", "manifest.json"]);
    const file = join(path, "database.dump");
    expect(readFileSync(file).subarray(0, 5).toString()).toBe("PGDMP");
    const digest = sha256(file);
    expect(backup.stdout).toContain(`sha256 ${digest}`);
    expect(backup.stdout).toContain(`dv db restore ${path} --yes`);
    // Nothing half-written is left beside it.
    expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(path, "manifest.json"), "utf8")) as Manifest;
    expect(manifest).toMatchObject({
      kind: "DatabaseBackup",
      scope: "database",
      format: "pg_dump",
      files: [{ name: "database.dump", bytes: readFileSync(file).length, sha256: digest }],
    });
    expect(manifest.schemas).toEqual(expect.arrayContaining(["tenancy", "inventory", "task"]));
    // Counted in the dump's own snapshot: the one tenant, and its audit record.
    expect(manifest.tables["tenancy.tenants"]).toBe(1);
    expect(manifest.tables["audit.records"]).toBeGreaterThanOrEqual(1);
    // The newest write the snapshot holds is the tenant's, made before the backup finished.
    expect(Date.parse(manifest.dataAsOf ?? "")).toBeLessThanOrEqual(
      Date.parse(manifest.finishedAt),
    );
    expect(manifest.dataAsOf).not.toBeNull();

    const before = await status(cli);
    expect(before).toMatchObject({ engine: "postgres", role: "primary" });
    expect(before.migrations.applied).toBe(before.migrations.available);
    expect(before.lastBackup).toMatchObject({ state: "succeeded", sha256: digest });
    expect(before.lastBackup?.bytes).toBe(readFileSync(file).length);
    expect(before.schemas.map((s) => s.name)).toEqual(
      expect.arrayContaining(["tenancy", "inventory", "task", "audit", "runtime"]),
    );
    expect(before.connections.byApplication.map((a) => a.name)).toContain("dv-dev");
    // Each context's RecoveryPolicy next to the facts: with no replica, a promotion is blocked
    // and a failure loses what was written since the backup.
    const inventory = before.recovery.find((r) => r.context === "inventory");
    expect(inventory).toMatchObject({
      policy: { rpoClass: "minutes", failover: "operator-approved" },
      lastBackup: { id: manifest.id, scope: "database" },
      withinRpo: true,
      promotion: { state: "blocked" },
    });
    expect(inventory?.promotion.reason).toMatch(/no replica streams from this server/);
    // Prometheus sees when the newest good backup finished (the DataverketBackupStale alert).
    const scraped = await (await fetch(`${cli.DV_SERVER}/metrics`)).text();
    const lastBackup = Number(
      /^dataverket_db_last_backup_timestamp_seconds (\S+)$/m.exec(scraped)?.[1] ?? "0",
    );
    expect(lastBackup).toBe(Date.parse(before.lastBackup?.finishedAt ?? "") / 1000);
    const table = await runDv(["db", "status"], cli);
    expect(table.stdout).toMatch(
      /^Last backup:\s+\S+ \(\d+s ago\), [\d.]+ \w+, sha256 [0-9a-f]{12}…/m,
    );
    expect(table.stdout).toMatch(
      /^inventory\s+minutes\s+minutes\s+required\s+operator-approved\s+\d+ s ago\s+\d+ s\s+blocked\s*$/m,
    );

    expect((await runDv(["create", "tenant", "after"], cli)).code).toBe(0);

    // Without --yes nothing happens; while dv dev is connected it is refused, naming it.
    const unconfirmed = await runDv(["db", "restore", path], dbEnv);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^dv: error: a restore replaces the tenants.*pass --yes/);
    const busy = await runDv(["db", "restore", path, "--yes"], dbEnv);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toMatch(/is in use by .*\bdv-dev ×\d+.*: stop the control plane first/);
    expect(await tenantNames(cli)).toEqual(["after", "before"]);

    await stop(dev);

    // A damaged snapshot, or an edited manifest, is refused before anything is touched.
    const damaged = join(dir, "damaged");
    cpSync(path, damaged, { recursive: true });
    truncateSync(join(damaged, "database.dump"), Math.floor(readFileSync(file).length / 2));
    const broken = await runDv(["db", "restore", damaged, "--yes"], dbEnv);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^dv: error: \S+database\.dump does not match the manifest \(\d+ bytes, .*damaged or incomplete; nothing was changed$/m,
    );
    const edited = join(dir, "edited");
    cpSync(path, edited, { recursive: true });
    writeFileSync(
      join(edited, "manifest.json"),
      JSON.stringify({ ...manifest, scope: "everything" }),
    );
    const invalid = await runDv(["db", "restore", edited, "--yes"], dbEnv);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(
      /manifest\.json: scope: Invalid option: expected one of "database"\|/,
    );
    // The tenant made after the backup is newer data: refused unless forced.
    const newer = await runDv(["db", "restore", path, "--yes"], dbEnv);
    expect(newer.code, newer.stderr).toBe(5);
    expect(newer.stderr).toMatch(
      /has data written after this backup was taken \(its newest write \S+, the backup's \S+\): a restore would lose it; pass --force/,
    );
    expect(await tenantsIn(t.name)).toEqual(["after", "before"]);

    const restored = await runDv(["db", "restore", path, "--yes", "--force"], dbEnv);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`backup ${manifest.id}: the whole database`);
    expect(restored.stdout).toMatch(
      new RegExp(`rows: ${Object.keys(manifest.tables).length} tables match the manifest`),
    );
    expect(restored.stdout).toMatch(/^ {2}ok {3}every task has the history of its creation$/m);
    expect(restored.stdout).not.toMatch(/FAIL/);

    ({ dev, cli } = await startDev(dir, dbEnv));
    expect(await tenantNames(cli)).toEqual(["before"]);
    const after = await status(cli);
    expect(after.restores[0]).toMatchObject({
      backupId: manifest.id,
      sha256: digest,
      scope: "database",
      violations: [],
      backupTakenAt: manifest.takenAt,
    });
    // The restored data was dumped while its own backup ran; its record is complete again.
    expect(after.lastBackup).toMatchObject({
      id: manifest.id,
      state: "succeeded",
      sha256: digest,
    });
    expect(after.backups.filter((b) => b.state === "running")).toEqual([]);
  });

  it("backs up and restores one context's schema, leaving the others as they are", async () => {
    expect((await runDv(["create", "tenant", "ctx"], cli)).code).toBe(0);
    const backup = await runDv(["db", "backup", dir, "--context", "tenancy"], cli);
    expect(backup.code, backup.stderr).toBe(0);
    const path = /written to (\S+)/.exec(backup.stdout)?.[1] ?? "";
    expect(readdirSync(path).sort()).toEqual(["manifest.json", "tenancy.dump"]);
    const manifest = JSON.parse(readFileSync(join(path, "manifest.json"), "utf8")) as Manifest;
    expect(manifest).toMatchObject({ scope: "tenancy", schemas: ["tenancy"] });
    expect(Object.keys(manifest.tables).every((t) => t.startsWith("tenancy."))).toBe(true);
    const audited = await countIn(t.name, "audit.records");

    const wrong = await runDv(["db", "backup", dir, "--context", "billing"], cli);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /^dv: error: --context: billing is not a bounded context; one of tenancy, inventory/,
    );

    await stop(dev);
    // Gone: the tenants of the schema only.
    const admin = new pg.Client(databaseUrl(t.name));
    await admin.connect();
    await admin.query("DROP SCHEMA tenancy CASCADE");
    await admin.end();
    const restored = await runDv(["db", "restore", path, "--yes"], dbEnv);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`backup ${manifest.id}: the tenancy context`);
    expect(await tenantsIn(t.name)).toEqual(["before", "ctx"]);
    // The audit log was not replaced: it has one more record, of the restore.
    expect(await countIn(t.name, "audit.records")).toBe(audited + 1);
    ({ dev, cli } = await startDev(dir, dbEnv));
  });

  it("says in one line when pg_dump is missing, and records the failed backup", async () => {
    await stop(dev);
    ({ dev, cli } = await startDev(dir, { ...dbEnv, DV_PG_BIN_DIR: join(dir, "no-such-dir") }));
    const failed = await runDv(["db", "backup", dir], cli);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(
      /^dv: error: POST \/api\/v1\/database\/backups answered 503: pg_dump not found .*DV_PG_BIN_DIR/,
    );
    expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);
    const shown = await status(cli);
    expect(shown.backups[0]).toMatchObject({ state: "failed" });
    expect(shown.backups[0]?.error).toMatch(/pg_dump not found/);
  });

  it("refuses a directory that is no backup, naming what it expected", async () => {
    const junk = mkdtempSync(join(dir, "notes-"));
    writeFileSync(join(junk, "notes.txt"), "not a backup\n");
    const refused = await runDv(["db", "restore", junk, "--yes", "--force"], dbEnv);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /is not a Dataverket backup: expected a directory with manifest\.json in it/,
    );
  });
});

describe("dv db against the embedded database of npm run dev", () => {
  it("backs up the running dev, and restores once it is stopped, keeping the old directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dv-db-pglite-"));
    const pgEnv = { DV_PGLITE_DIR: join(dir, "pglite") };
    let { dev, cli } = await startDev(dir, pgEnv);
    try {
      expect((await runDv(["create", "tenant", "kept"], cli)).code).toBe(0);
      const backup = await runDv(["db", "backup"], cli, 60_000, { cwd: dir });
      expect(backup.code, backup.stderr).toBe(0);
      const path = /written to (\S+)/.exec(backup.stdout)?.[1] ?? "";
      expect(path).toMatch(/dataverket-\d{8}T\d{6}Z$/);
      const file = join(path, "database.tar.gz");
      expect(readFileSync(file).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect((await status(cli)).lastBackup).toMatchObject({ sha256: sha256(file) });
      // A backup of one context needs a server; the embedded database is backed up whole.
      const partial = await runDv(["db", "backup", dir, "--context", "inventory"], cli);
      expect(partial.code).toBe(2);
      expect(partial.stderr).toMatch(/answered 400: the embedded database is backed up whole/);
      expect((await runDv(["create", "tenant", "lost"], cli)).code).toBe(0);

      const busy = await runDv(["db", "restore", path, "--yes", "--force"], pgEnv);
      expect(busy.code).toBe(5);
      expect(busy.stderr).toMatch(/is in use by process \d+: stop dv dev first/);

      await stop(dev);
      const newer = await runDv(["db", "restore", path, "--yes"], pgEnv);
      expect(newer.code).toBe(5);
      expect(newer.stderr).toMatch(/has data written after this backup was taken/);
      const restored = await runDv(["db", "restore", path, "--yes", "--force"], pgEnv);
      expect(restored.code, restored.stderr).toBe(0);
      expect(restored.stdout).toMatch(
        /the previous database is kept in \S+pglite\.before-restore-/,
      );

      ({ dev, cli } = await startDev(dir, pgEnv));
      expect(await tenantNames(cli)).toEqual(["kept"]);
    } finally {
      await stop(dev);
    }
  }, 240_000);
});
