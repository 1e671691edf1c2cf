import { existsSync } from "node:fs";
import { AuditStore } from "../contexts/audit/index.js";
import { type Backup, BackupStore } from "../contexts/runtime/index.js";
import {
  BackupError,
  BackupErrorCode,
  connectPostgres,
  type Database,
  inTransaction,
  type MigrationStatus,
  migrationStatus,
  OWNED_SCHEMAS,
  openPglite,
  restorePgDump,
  restorePglite,
  runMigrations,
  type SnapshotFormat,
  snapshotFormatOf,
} from "../db/index.js";
import type { IdGenerator } from "../kernel/index.js";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import type { Logger } from "../observability/index.js";
import { checkInvariants, dataAsOf, type InvariantResult } from "./facts.js";
import { type BackupManifest, readBackup } from "./manifest.js";

/** Where the database to restore is: a server, or the embedded PGlite directory. */
export interface RestoreTarget {
  /** `DATABASE_URL`; when absent, the embedded database in `pgliteDir`. */
  readonly url?: string | undefined;
  readonly pgliteDir: string;
  readonly pgBinDir?: string | undefined;
}

/** Options of {@link restoreDatabase}. */
export interface RestoreOptions {
  readonly target: RestoreTarget;
  /** The backup directory `dv db backup` wrote (or a file in it). */
  readonly path: string;
  readonly actor: string;
  /** Restore even though the database has data written after the backup was taken. */
  readonly force: boolean;
  /** Restore even though other sessions are connected to the server. */
  readonly evenIfConnected: boolean;
  readonly log: Logger;
  readonly newId: IdGenerator;
  readonly now: () => Date;
}

/** What a restore did. */
export interface RestoreResult {
  readonly target: string;
  readonly manifest: BackupManifest;
  readonly durationMs: number;
  /** Tables whose row count was checked against the manifest inside the restore. */
  readonly tablesVerified: number;
  /** The invariants checked afterwards; a restore with violations exits non-zero. */
  readonly invariants: readonly InvariantResult[];
  /** The embedded database's previous data directory, kept under this name. */
  readonly previous: string | undefined;
  /** Migrations of the restored database, after this build's pending ones were applied. */
  readonly migrations: MigrationStatus;
}

/** The backup's record, complete, as the manifest describes it. */
function recordOf(m: BackupManifest): Backup {
  const [file] = m.files;
  return {
    id: m.id,
    state: "succeeded",
    format: m.format,
    actor: m.actor,
    startedAt: new Date(m.takenAt),
    finishedAt: new Date(m.finishedAt),
    bytes: file?.bytes ?? null,
    sha256: file?.sha256 ?? null,
    latestMigration: m.latestMigration,
    error: null,
    scope: m.scope,
    dataAsOf: m.dataAsOf ? new Date(m.dataAsOf) : null,
    tables: m.tables,
    serverVersion: m.serverVersion,
  };
}

/**
 * Sessions of other programs on the server's database: a restore under them would pull the data
 * from under their feet.
 */
async function usersOf(db: Database): Promise<string[]> {
  const sessions = await db.query<{ name: string; count: string | number }>(
    `SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS name, count(*) AS count
       FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_type = 'client backend' AND application_name NOT LIKE 'dv-restore%'
      GROUP BY 1 ORDER BY 1`,
  );
  return sessions.map((s) => `${s.name} ×${s.count}`);
}

/**
 * Refuses to replace data written after the backup was taken (it would be lost), unless forced;
 * and, for one context, a database at another migration than the backup's (the schemas would
 * disagree).
 */
async function checkTarget(db: Database, m: BackupManifest, force: boolean): Promise<void> {
  const schemas = m.scope === "database" ? undefined : [m.scope];
  const newest = await dataAsOf((text, params) => db.query(text, params), schemas);
  const backupAsOf = m.dataAsOf ? new Date(m.dataAsOf) : null;
  if (newest && (!backupAsOf || newest > backupAsOf) && !force) {
    throw new BackupError(
      BackupErrorCode.NewerData,
      `${db.target} has data written after this backup was taken (its newest write ${newest.toISOString()}, the backup's ${backupAsOf?.toISOString() ?? "none"}): a restore would lose it; pass --force to restore anyway`,
    );
  }
  if (m.scope !== "database") {
    const { latest } = await migrationStatus(db);
    if ((latest ?? null) !== m.latestMigration) {
      throw new BackupError(
        BackupErrorCode.Unsupported,
        `the backup of ${m.scope} was taken at migration ${m.latestMigration ?? "none"} and ${db.target} is at ${latest ?? "none"}: one context restores only into a database at the same migration; restore a whole-database backup instead`,
      );
    }
  }
}

/**
 * Restores a backup directory into a database — offline: the control plane must be stopped.
 * The manifest is verified first (the file's size and digest); a database with newer data is
 * refused unless forced. A server gets the dump replayed in one transaction that also checks
 * every table's row count against the manifest, so nothing changes if either fails; the embedded
 * database's directory is swapped, the old one kept. Then this build's pending migrations are
 * applied, the invariants checked, and the restore recorded and audited in the restored database.
 *
 * @throws {BackupError} `DV_BACKUP_WRONG_FORMAT`, `DV_BACKUP_MANIFEST_MISMATCH`,
 *   `DV_BACKUP_DATABASE_IN_USE`, `DV_BACKUP_NEWER_DATA`, `DV_BACKUP_UNSUPPORTED`,
 *   `DV_BACKUP_TOOL_MISSING`, `DV_BACKUP_TOOL_FAILED`.
 * @throws {StartupError} when the server cannot be reached.
 */
export async function restoreDatabase(options: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  const { manifest, file } = await readBackup(options.path);
  const format: SnapshotFormat = await snapshotFormatOf(file);
  if (format !== manifest.format) {
    throw new BackupError(
      BackupErrorCode.ManifestMismatch,
      `${file} is a ${format} snapshot; the manifest says ${manifest.format}`,
    );
  }
  const { url } = options.target;
  if (url && format !== "pg_dump") {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${options.path} is a snapshot of an embedded (PGlite) database; it restores only into one: unset DATABASE_URL`,
    );
  }
  if (!url && format !== "pglite") {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${options.path} is a pg_dump of a PostgreSQL server; it restores only into one: set DATABASE_URL`,
    );
  }
  const schemas = manifest.scope === "database" ? OWNED_SCHEMAS : [manifest.scope];
  const tables = manifest.tables ?? {};

  let db: Database;
  let previous: string | undefined;
  if (url) {
    const connect = () =>
      connectPostgres({ url, poolMax: 2, log: options.log, applicationName: "dv-restore" });
    db = await connect();
    try {
      const users = await usersOf(db);
      if (users.length > 0 && !options.evenIfConnected) {
        throw new BackupError(
          BackupErrorCode.InUse,
          `${db.target} is in use by ${users.join(", ")}: stop the control plane first (kubectl scale deployment -l app.kubernetes.io/name=dataverket --replicas=0), or pass --even-if-connected`,
        );
      }
      await checkTarget(db, manifest, options.force);
      await restorePgDump({
        url,
        binDir: options.target.pgBinDir,
        file,
        schemas,
        expectedRows: tables,
      });
    } finally {
      await db.close();
    }
    db = await connect();
  } else {
    const dir = options.target.pgliteDir;
    try {
      if (existsSync(dir)) {
        const before = await openPglite({ dataDir: dir });
        try {
          await checkTarget(before, manifest, options.force);
        } finally {
          await before.close();
        }
      }
      ({ previous } = await restorePglite({ dataDir: dir, file, now: options.now() }));
    } catch (err) {
      if (err instanceof StartupError && err.code === StartupErrorCode.DataDirLocked) {
        throw new BackupError(
          BackupErrorCode.InUse,
          `${err.message}: stop dv dev first, then restore`,
          { cause: err },
        );
      }
      throw err;
    }
    db = await openPglite({ dataDir: dir });
  }
  try {
    await runMigrations(db);
    // Every context's invariants: one context restored must still agree with the others.
    const invariants = await checkInvariants(
      (text, params) => db.query(text, params),
      [...OWNED_SCHEMAS],
    );
    const violations = invariants
      .filter((i) => i.violations > 0)
      .map((i) => `${i.description}: ${i.violations} violation(s)`);
    const durationMs = Date.now() - started;
    const [entry] = manifest.files;
    await inTransaction(db, async (tx) => {
      const id = options.newId();
      await new BackupStore(db).recordRestore(tx, {
        id,
        actor: options.actor,
        format,
        bytes: entry?.bytes ?? 0,
        sha256: entry?.sha256 ?? "",
        durationMs,
        backup: recordOf(manifest),
        scope: manifest.scope,
        violations,
      });
      await new AuditStore(db).record(tx, {
        actor: options.actor,
        datacenterId: "-", // the database serves every datacenter
        action: "database.restore",
        resourceKind: "database",
        resourceId: id,
        after: {
          format,
          scope: manifest.scope,
          sha256: entry?.sha256 ?? null,
          backupId: manifest.id,
          backupTakenAt: manifest.takenAt,
          forced: options.force,
          violations,
        },
        correlationId: id,
      });
    });
    return {
      target: db.target,
      manifest,
      durationMs,
      tablesVerified: Object.keys(tables).length,
      invariants,
      previous,
      migrations: await migrationStatus(db),
    };
  } finally {
    await db.close();
  }
}
