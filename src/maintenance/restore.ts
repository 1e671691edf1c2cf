import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
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
  openPglite,
  pgDumpTakenAt,
  restorePgDump,
  restorePglite,
  runMigrations,
  type SnapshotFormat,
  snapshotFormatOf,
} from "../db/index.js";
import type { IdGenerator } from "../kernel/index.js";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import type { Logger } from "../observability/index.js";

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
  /** The backup file (`dv db backup` wrote it). */
  readonly file: string;
  readonly actor: string;
  /** Restore even though control-plane processes are connected to the server. */
  readonly force: boolean;
  readonly log: Logger;
  readonly newId: IdGenerator;
  readonly now: () => Date;
}

/** What a restore did. */
export interface RestoreResult {
  readonly target: string;
  readonly format: SnapshotFormat;
  readonly bytes: number;
  readonly sha256: string;
  readonly durationMs: number;
  /** The backup record the file matched in the database before the restore. */
  readonly backup: Backup | undefined;
  /** When the backup was taken, when known. */
  readonly takenAt: Date | undefined;
  /** The embedded database's previous data directory, kept under this name. */
  readonly previous: string | undefined;
  /** Migrations of the restored database, after this build's pending ones were applied. */
  readonly migrations: MigrationStatus;
}

async function digest(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** The succeeded backup of `db` with this digest, if its catalogue knows one. */
async function knownBackup(db: Database, sha256: string): Promise<Backup | undefined> {
  const [row] = await db.query<{ found: boolean }>(
    "SELECT to_regclass('runtime.backups') IS NOT NULL AS found",
  );
  return row?.found ? new BackupStore(db).findBySha256(sha256) : undefined;
}

/**
 * Sessions of other programs on the server's database, and controller replicas whose lease
 * membership is live: a restore under them would pull the data from under their feet.
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
 * Replaces the whole control-plane state of a database with a backup's — offline: the control
 * plane must be stopped. A server gets the dump replayed in one transaction (nothing changes if it
 * fails); the embedded database's directory is swapped, the old one kept. Then this build's
 * pending migrations are applied and the restore is recorded and audited in the restored database.
 *
 * @throws {BackupError} `DV_BACKUP_WRONG_FORMAT`, `DV_BACKUP_DATABASE_IN_USE`,
 *   `DV_BACKUP_TOOL_MISSING`, `DV_BACKUP_TOOL_FAILED`.
 * @throws {StartupError} when the server cannot be reached.
 */
export async function restoreDatabase(options: RestoreOptions): Promise<RestoreResult> {
  const format = await snapshotFormatOf(options.file);
  const { bytes, sha256 } = await digest(options.file);
  const started = Date.now();
  const { url } = options.target;
  if (url && format !== "pg_dump") {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${options.file} is a snapshot of an embedded (PGlite) database; it restores only into one: unset DATABASE_URL`,
    );
  }
  if (!url && format !== "pglite") {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${options.file} is a pg_dump of a PostgreSQL server; it restores only into one: set DATABASE_URL`,
    );
  }

  let db: Database;
  let backup: Backup | undefined;
  let takenAt: Date | undefined;
  let previous: string | undefined;
  if (url) {
    const connect = () =>
      connectPostgres({ url, poolMax: 2, log: options.log, applicationName: "dv-restore" });
    db = await connect();
    try {
      const users = await usersOf(db);
      if (users.length > 0 && !options.force) {
        throw new BackupError(
          BackupErrorCode.InUse,
          `${db.target} is in use by ${users.join(", ")}: stop the control plane first (kubectl scale deployment -l app.kubernetes.io/name=dataverket --replicas=0), or pass --force`,
        );
      }
      backup = await knownBackup(db, sha256);
      takenAt =
        backup?.startedAt ??
        (await pgDumpTakenAt({ binDir: options.target.pgBinDir }, options.file));
      await restorePgDump({ url, binDir: options.target.pgBinDir, file: options.file });
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
          backup = await knownBackup(before, sha256);
        } finally {
          await before.close();
        }
      }
      takenAt = backup?.startedAt;
      ({ previous } = await restorePglite({
        dataDir: dir,
        file: options.file,
        now: options.now(),
      }));
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
    const durationMs = Date.now() - started;
    await inTransaction(db, async (tx) => {
      const id = options.newId();
      await new BackupStore(db).recordRestore(tx, {
        id,
        actor: options.actor,
        format,
        bytes,
        sha256,
        durationMs,
        backup,
        takenAt,
      });
      await new AuditStore(db).record(tx, {
        actor: options.actor,
        datacenterId: "-", // the database serves every datacenter
        action: "database.restore",
        resourceKind: "database",
        resourceId: id,
        after: {
          format,
          sha256,
          bytes,
          backupId: backup?.id ?? null,
          backupTakenAt: takenAt?.toISOString() ?? null,
        },
        correlationId: id,
      });
    });
    return {
      target: db.target,
      format,
      bytes,
      sha256,
      durationMs,
      backup,
      takenAt,
      previous,
      migrations: await migrationStatus(db),
    };
  } finally {
    await db.close();
  }
}
