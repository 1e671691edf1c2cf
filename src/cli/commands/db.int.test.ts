// `dv db status|backup|restore` end to end, as an operator types them: a backup taken while the
// control plane runs, a change made after it, the control plane stopped, the backup restored, and
// the change gone — against a real PostgreSQL server (pg_dump, pg_restore, psql) and against the
// embedded PGlite of `npm run dev`. A restore refused while the database is in use, and one of a
// damaged file, change nothing.
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
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
  restores: { backupId: string | null; sha256: string; backupTakenAt: string | null }[];
}

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

    const file = join(dir, "backup.dump");
    const backup = await runDv(["db", "backup", "-f", file], cli);
    expect(backup.code, backup.stderr).toBe(0);
    expect(readFileSync(file).subarray(0, 5).toString()).toBe("PGDMP");
    const digest = sha256(file);
    expect(backup.stdout).toContain(`sha256 ${digest}`);
    expect(backup.stdout).toContain(`dv db restore ${file} --yes`);
    // Nothing half-written is left beside it.
    expect(readdirSync(dir).filter((f) => f.endsWith(".partial"))).toEqual([]);

    const before = await status(cli);
    expect(before).toMatchObject({ engine: "postgres", role: "primary" });
    expect(before.migrations.applied).toBe(before.migrations.available);
    expect(before.lastBackup).toMatchObject({ state: "succeeded", sha256: digest });
    expect(before.lastBackup?.bytes).toBe(readFileSync(file).length);
    expect(before.schemas.map((s) => s.name)).toEqual(
      expect.arrayContaining(["tenancy", "inventory", "task", "audit", "runtime"]),
    );
    expect(before.connections.byApplication.map((a) => a.name)).toContain("dv-dev");
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

    expect((await runDv(["create", "tenant", "after"], cli)).code).toBe(0);

    // Without --yes nothing happens; while dv dev is connected it is refused, naming it.
    const unconfirmed = await runDv(["db", "restore", file], dbEnv);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.stderr).toMatch(/^dv: error: a restore replaces every tenant.*pass --yes/);
    const busy = await runDv(["db", "restore", file, "--yes"], dbEnv);
    expect(busy.code).toBe(5);
    expect(busy.stderr).toMatch(/is in use by .*\bdv-dev ×\d+.*: stop the control plane first/);
    expect(await tenantNames(cli)).toEqual(["after", "before"]);

    await stop(dev);

    // A damaged backup is refused and changes nothing.
    const damaged = join(dir, "damaged.dump");
    writeFileSync(damaged, readFileSync(file));
    truncateSync(damaged, Math.floor(readFileSync(file).length / 2));
    const broken = await runDv(["db", "restore", damaged, "--yes"], dbEnv);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(
      /^dv: error: pg_restore failed: could not read from input file: end of file; the database was not changed$/m,
    );
    // Read with a connection of its own, closed before the restore (which counts who is connected).
    const check = new pg.Client(databaseUrl(t.name));
    await check.connect();
    const intact = await check.query<{ name: string }>(
      "SELECT name FROM tenancy.tenants ORDER BY name",
    );
    await check.end();
    expect(intact.rows.map((r) => r.name)).toEqual(["after", "before"]);

    const restored = await runDv(["db", "restore", file, "--yes"], dbEnv);
    expect(restored.code, restored.stderr).toBe(0);
    const backupId = before.lastBackup?.id ?? "";
    expect(restored.stdout).toContain(`backup ${backupId}`);

    ({ dev, cli } = await startDev(dir, dbEnv));
    expect(await tenantNames(cli)).toEqual(["before"]);
    const after = await status(cli);
    expect(after.restores[0]).toMatchObject({ backupId, sha256: digest });
    expect(after.restores[0]?.backupTakenAt).not.toBeNull();
    // The restored data was dumped while its own backup ran; its record is complete again.
    expect(after.lastBackup).toMatchObject({ id: backupId, state: "succeeded", sha256: digest });
    expect(after.backups.filter((b) => b.state === "running")).toEqual([]);
  });

  it("says in one line when pg_dump is missing, and records the failed backup", async () => {
    await stop(dev);
    ({ dev, cli } = await startDev(dir, { ...dbEnv, DV_PG_BIN_DIR: join(dir, "no-such-dir") }));
    const failed = await runDv(["db", "backup", "-f", join(dir, "never.dump")], cli);
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(
      /^dv: error: POST \/api\/v1\/database\/backups answered 503: pg_dump not found .*DV_PG_BIN_DIR/,
    );
    expect(readdirSync(dir).filter((f) => f.startsWith("never"))).toEqual([]);
    const shown = await status(cli);
    expect(shown.backups[0]).toMatchObject({ state: "failed" });
    expect(shown.backups[0]?.error).toMatch(/pg_dump not found/);
  });

  it("refuses a file that is no backup, naming what it expected", async () => {
    const junk = join(dir, "notes.txt");
    writeFileSync(junk, "not a backup\n");
    const refused = await runDv(["db", "restore", junk, "--yes", "--force"], dbEnv);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/is not a Dataverket backup: expected a pg_dump custom-format/);
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
      const file = /written to (\S+)/.exec(backup.stdout)?.[1] ?? "";
      expect(file).toMatch(/dataverket-\d{8}T\d{6}Z\.tar\.gz$/);
      expect(readFileSync(file).subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
      expect((await status(cli)).lastBackup).toMatchObject({ sha256: sha256(file) });
      expect((await runDv(["create", "tenant", "lost"], cli)).code).toBe(0);

      const busy = await runDv(["db", "restore", file, "--yes"], pgEnv);
      expect(busy.code).toBe(5);
      expect(busy.stderr).toMatch(/is in use by process \d+: stop dv dev first/);

      await stop(dev);
      const restored = await runDv(["db", "restore", file, "--yes"], pgEnv);
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
