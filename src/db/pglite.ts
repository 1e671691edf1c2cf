import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { Readable } from "node:stream";
import { PGlite } from "@electric-sql/pglite";
import { btree_gist } from "@electric-sql/pglite/contrib/btree_gist";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/pglite";
import { migrate } from "drizzle-orm/pglite/migrator";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import type { Snapshot, SnapshotOptions } from "./backup.js";
import type { Database, IsolationLevel, Orm, Tx } from "./database.js";
import { BackupError, BackupErrorCode, MigrationError } from "./errors.js";

/** Options of {@link openPglite}. */
export interface OpenPgliteOptions {
  /** Data directory; `undefined` keeps the database in memory (tests). */
  readonly dataDir?: string | undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Takes an exclusive lock file beside the data directory: PGlite has a single writer, and two
 * processes on one directory would corrupt it. A lock left by a dead process is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const lockPath = `${dataDir}.lock`;
  mkdirSync(dirname(lockPath), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, "wx");
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number.parseInt(readFileSync(lockPath, "utf8"), 10);
      if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
        throw new StartupError(
          StartupErrorCode.DataDirLocked,
          `the embedded database ${dataDir} is in use by process ${holder}`,
          `stop that process (another dv dev?) or set DV_PGLITE_DIR to another directory`,
        );
      }
      rmSync(lockPath, { force: true });
    }
  }
  throw new StartupError(
    StartupErrorCode.DataDirLocked,
    `cannot lock the embedded database ${dataDir}`,
    `remove ${lockPath} if no process uses it`,
  );
}

/**
 * Opens PGlite (PostgreSQL compiled to WebAssembly) in this process with the extensions the
 * migrations need. Used by `dv dev` when no `DATABASE_URL` is given, and by the migration tests.
 *
 * @throws {StartupError} `DV_DATA_DIR_LOCKED` when another live process holds the directory.
 */
export async function openPglite(options: OpenPgliteOptions = {}): Promise<Database> {
  const unlock = options.dataDir ? lockDataDir(options.dataDir) : () => undefined;
  let client: PGlite;
  try {
    if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
    client = await PGlite.create(options.dataDir ?? "memory://", { extensions: { btree_gist } });
  } catch (err) {
    unlock();
    throw err;
  }
  const pgliteOrm = drizzle({ client, casing: "snake_case" });
  const orm = pgliteOrm as unknown as Orm;
  return {
    dialect: "pglite",
    target: `pglite:${options.dataDir ?? "memory"}`,
    transaction<T>(fn: (tx: Tx) => Promise<T>, isolationLevel?: IsolationLevel): Promise<T> {
      return orm.transaction(fn, isolationLevel ? { isolationLevel } : undefined);
    },
    async read<T>(role: string, fn: (orm: Orm) => Promise<T>): Promise<T> {
      // One connection serves every caller here, so the role switch and the reads must be one
      // transaction: another caller's statements cannot run in between.
      return pgliteOrm.transaction(async (tx) => {
        await tx.execute(sql.raw(`SET LOCAL ROLE "${role.replaceAll('"', '""')}"`));
        return fn(tx);
      });
    },
    async query<Row extends Record<string, unknown>>(text: string, params?: readonly unknown[]) {
      const result = await client.query<Row>(text, params as unknown[] | undefined);
      return result.rows;
    },
    async listen(channel, handler) {
      const unsubscribe = await client.listen(channel, handler);
      return async () => unsubscribe();
    },
    async migrate(folder: string) {
      // PGlite has a single connection in this process: nothing else can migrate concurrently.
      try {
        await migrate(pgliteOrm, { migrationsFolder: folder });
      } catch (err) {
        throw new MigrationError(err);
      }
    },
    async snapshot<Facts>(wanted: SnapshotOptions<Facts>): Promise<Snapshot<Facts>> {
      if (wanted.schemas) {
        throw new BackupError(
          BackupErrorCode.Unsupported,
          "the embedded database is backed up whole: a backup of some contexts needs a PostgreSQL server (DATABASE_URL)",
        );
      }
      // The facts are read just before the copy: a write in between is in the copy only.
      const facts = await wanted.inspect(
        async <Row extends Record<string, unknown>>(text: string, params?: readonly unknown[]) =>
          (await client.query<Row>(text, params as unknown[] | undefined)).rows,
        false,
      );
      // PGlite copies its data directory between two statements (it holds its query lock): what
      // a crash at that moment would leave, which PostgreSQL recovers from to a consistent state.
      const blob = await client.dumpDataDir("gzip");
      return {
        facts,
        exact: false,
        format: "pglite",
        stream: Readable.fromWeb(blob.stream()),
        done: Promise.resolve(),
        abort: () => undefined,
      };
    },
    async ping() {
      await client.query("SELECT 1");
    },
    async close() {
      try {
        await client.close();
      } finally {
        unlock();
      }
    },
  };
}

/**
 * Replaces the embedded database in `dataDir` with a snapshot `dv db backup` took of one (a
 * gzipped tar of a data directory). The snapshot is unpacked into a new directory and opened once
 * (PostgreSQL recovers it) before it takes the place of the old one; the old one is kept beside
 * it, renamed, so a mistaken restore loses nothing.
 *
 * @returns where the previous data directory was moved, if there was one.
 * @throws {StartupError} `DV_DATA_DIR_LOCKED` when a running process (dv dev) has it open.
 * @throws {BackupError} `DV_BACKUP_WRONG_FORMAT` when the file is no PGlite data directory.
 */
export async function restorePglite(options: {
  readonly dataDir: string;
  readonly file: string;
  readonly now: Date;
}): Promise<{ previous: string | undefined }> {
  const unlock = lockDataDir(options.dataDir);
  const stamp = options.now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const incoming = join(dirname(options.dataDir), `.${basename(options.dataDir)}.restoring`);
  try {
    rmSync(incoming, { recursive: true, force: true });
    mkdirSync(incoming, { recursive: true });
    const blob = new Blob([await readFile(options.file)]);
    try {
      const client = await PGlite.create(incoming, {
        loadDataDir: blob,
        extensions: { btree_gist },
      });
      await client.query("SELECT 1");
      await client.close();
    } catch (err) {
      throw new BackupError(
        BackupErrorCode.WrongFormat,
        `${options.file} is not a PGlite data directory this build can open: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    }
    let previous: string | undefined;
    if (existsSync(options.dataDir)) {
      previous = `${options.dataDir}.before-restore-${stamp}`;
      renameSync(options.dataDir, previous);
    }
    renameSync(incoming, options.dataDir);
    return { previous };
  } finally {
    rmSync(incoming, { recursive: true, force: true });
    unlock();
  }
}
