import { spawn } from "node:child_process";
import { open } from "node:fs/promises";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";
import { childEnvironment } from "../config/index.js";
import { BackupError, BackupErrorCode } from "./errors.js";
import { ContextRole } from "./context-roles.js";

/**
 * What a snapshot is: `pg_dump`'s custom format (a PostgreSQL server; restorable with
 * `pg_restore` too), or `pglite`, a gzipped tar of the embedded database's data directory.
 */
export type SnapshotFormat = "pg_dump" | "pglite";

/** The file name extension of each format. */
export const SNAPSHOT_EXTENSIONS: Readonly<Record<SnapshotFormat, string>> = {
  pg_dump: "dump",
  pglite: "tar.gz",
};

/** Runs one read-only statement of a snapshot's inspection. */
export type SnapshotQuery = <Row extends Record<string, unknown>>(
  text: string,
  params?: readonly unknown[],
) => Promise<Row[]>;

/** What to copy, and what to read while copying it. */
export interface SnapshotOptions<Facts> {
  /** Only these schemas (a server only); every schema when absent. */
  readonly schemas?: readonly string[] | undefined;
  /**
   * Reads facts about the data in the very snapshot that is copied (a server: the dump imports
   * the transaction's exported snapshot), for the backup's manifest.
   */
  readonly inspect: (query: SnapshotQuery, exact: boolean) => Promise<Facts>;
}

/** A consistent copy of the database, streamed as it is produced. */
export interface Snapshot<Facts = undefined> {
  readonly format: SnapshotFormat;
  /**
   * What `inspect` read. `exact`: read in the snapshot itself; otherwise (PGlite) just before it,
   * so a write in between may be in the copy and not in these facts.
   */
  readonly facts: Facts;
  readonly exact: boolean;
  /** The bytes of the snapshot. */
  readonly stream: Readable;
  /**
   * Resolves once the whole snapshot was produced.
   *
   * @throws {BackupError} when the tool could not be run or failed.
   */
  readonly done: Promise<void>;
  /** Stops producing it (whoever received it went away). */
  readonly abort: () => void;
}

/**
 * The schemas the control plane owns: its bounded contexts, the simulator, and the migration
 * journal. A restore replaces exactly these.
 */
export const OWNED_SCHEMAS: readonly string[] = [
  ...Object.keys(ContextRole),
  "drizzle", // drizzle-kit's journal of applied migrations
];

/** How a PostgreSQL helper program is found and reaches the server. */
export interface PgToolOptions {
  /** The server, as `DATABASE_URL` gives it. */
  readonly url: string;
  /** Directory of `pg_dump`, `pg_restore` and `psql`; `PATH` when unset. */
  readonly binDir?: string | undefined;
}

/** The URL without its password, and the password for `PGPASSWORD`: never on a command line. */
function connection(url: string): { uri: string; env: Record<string, string> } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = "";
  return {
    uri: parsed.toString(),
    env: childEnvironment(password ? { PGPASSWORD: password } : {}),
  };
}

interface Tool {
  readonly name: string;
  readonly stdin: Writable;
  readonly stdout: Readable;
  /** Resolves when it exited 0; rejects with a {@link BackupError} naming its last error line. */
  readonly exited: Promise<void>;
  kill(): void;
}

/** Runs a PostgreSQL client program; with a `url`, connected to that server. */
function runTool(
  options: Omit<PgToolOptions, "url"> & { url?: string | undefined },
  name: string,
  args: readonly string[],
): Tool {
  const { uri, env } = options.url
    ? connection(options.url)
    : { uri: undefined, env: childEnvironment({}) };
  const bin = options.binDir ? join(options.binDir, name) : name;
  const child = spawn(bin, uri ? [...args, `--dbname=${uri}`] : [...args], {
    env,
    stdio: ["pipe", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve, reject) => {
    child.on("error", (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "ENOENT"
          ? new BackupError(
              BackupErrorCode.ToolMissing,
              `${name} not found (${options.binDir ? `in ${options.binDir}, DV_PG_BIN_DIR` : "on PATH"}): install the PostgreSQL client tools of the server's major version or newer (Debian: postgresql-client), or set DV_PG_BIN_DIR`,
              { cause: err },
            )
          : new BackupError(BackupErrorCode.ToolFailed, `${name} could not run: ${err.message}`, {
              cause: err,
            }),
      );
    });
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const last =
        stderr
          .trim()
          .split("\n")
          .filter((l) => l.trim() !== "")
          .pop()
          // "pg_restore: error: could not read…" and "psql:<stdin>:12: ERROR:  …" read better
          // without the tool's own prefix.
          ?.replace(new RegExp(`^${name}: (error: )?`), "")
          .replace(/^psql:<stdin>:\d+: (ERROR|FATAL):\s+/, "") ?? `exit ${code ?? signal}`;
      reject(new BackupError(BackupErrorCode.ToolFailed, `${name} failed: ${last}`));
    });
  });
  // Whoever awaits the tool sees the failure; the stream errors must not crash the process.
  child.stdin.on("error", () => undefined);
  return {
    name,
    stdin: child.stdin,
    stdout: child.stdout,
    exited,
    kill: () => child.kill("SIGTERM"),
  };
}

/**
 * Streams a `pg_dump` of the whole database in the custom format: one consistent snapshot
 * (pg_dump reads in one repeatable-read transaction), taken while the control plane runs.
 */
export function pgDumpSnapshot(
  options: PgToolOptions & {
    /** Only these schemas. */
    readonly schemas?: readonly string[] | undefined;
    /** An exported snapshot (`pg_export_snapshot()`) to dump, held open by its transaction. */
    readonly snapshotId?: string | undefined;
  },
): Omit<Snapshot, "facts" | "exact"> {
  const tool = runTool(options, "pg_dump", [
    "--format=custom",
    "--no-password",
    // Waiting behind a migration's exclusive lock for long would hold the caller for nothing.
    "--lock-wait-timeout=30000",
    ...(options.schemas ?? []).map((s) => `--schema=${s}`),
    ...(options.snapshotId ? [`--snapshot=${options.snapshotId}`] : []),
  ]);
  tool.stdin.end();
  return {
    format: "pg_dump",
    stream: tool.stdout,
    done: tool.exited,
    abort: () => tool.kill(),
  };
}

/** The format of a backup file, from its first bytes. */
export async function snapshotFormatOf(path: string): Promise<SnapshotFormat> {
  const file = await open(path, "r");
  try {
    const head = Buffer.alloc(5);
    const { bytesRead } = await file.read(head, 0, 5, 0);
    if (bytesRead === 5 && head.toString("latin1") === "PGDMP") return "pg_dump";
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "pglite";
  } finally {
    await file.close();
  }
  throw new BackupError(
    BackupErrorCode.WrongFormat,
    `${path} is not a Dataverket backup: expected a pg_dump custom-format file or a gzipped PGlite data directory (what dv db backup writes)`,
  );
}

/**
 * Replaces the control plane's schemas of the server with those of a custom-format dump, in one
 * transaction: the context roles are made sure of, the owned schemas dropped, the dump replayed —
 * and if any statement fails, all of it is rolled back and the database is as it was.
 *
 * @throws {BackupError} `DV_BACKUP_TOOL_MISSING` or `DV_BACKUP_TOOL_FAILED`.
 */
export async function restorePgDump(
  options: PgToolOptions & {
    file: string;
    /** The schemas replaced: those the dump holds. */
    schemas: readonly string[];
    /** Rows each `schema.table` must have once replayed, or nothing is committed. */
    expectedRows: Readonly<Record<string, number>>;
  },
): Promise<void> {
  // pg_restore turns the archive into SQL; psql runs ours, then that, in one transaction that is
  // committed only once pg_restore has produced all of it. A pg_restore that fails half-way ends
  // psql's input without COMMIT, and PostgreSQL rolls the transaction back.
  // pg_restore only reads the file here: it must not connect.
  const reader = runTool({ binDir: options.binDir }, "pg_restore", [
    "--file=-",
    "--no-owner",
    "--exit-on-error",
    options.file,
  ]);
  const psql = runTool(options, "psql", [
    "--no-psqlrc",
    "--quiet",
    "--set=ON_ERROR_STOP=1",
    "--no-password",
  ]);
  reader.stdin.end();
  const roles = Object.values(ContextRole);
  const prologue = [
    "BEGIN;",
    // Roles are global to the cluster: a fresh one has none, and the dump grants to them.
    "DO $$ DECLARE r text; BEGIN",
    `  FOREACH r IN ARRAY ARRAY[${roles.map((r) => `'${r}'`).join(", ")}] LOOP`,
    "    BEGIN EXECUTE format('CREATE ROLE %I NOLOGIN', r);",
    "    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END;",
    "  END LOOP;",
    "END $$;",
    `GRANT ${roles.map((r) => `"${r}"`).join(", ")} TO CURRENT_USER;`,
    ...options.schemas.map((s) => `DROP SCHEMA IF EXISTS ${quoteIdent(s)} CASCADE;`),
    "",
  ].join("\n");
  psql.stdin.write(prologue);
  reader.stdout.pipe(psql.stdin, { end: false });
  // Whichever fails first is the error to report; the other is stopped.
  let first: Error | undefined;
  const psqlDone = psql.exited.catch((err: unknown) => {
    first ??= asError(err);
    reader.kill();
  });
  try {
    await reader.exited;
  } catch (err) {
    first ??= asError(err);
    psql.kill();
    await psqlDone;
    throw unchanged(first);
  }
  // pg_restore has exited, so all it wrote has reached psql's input: check what it replayed
  // against the manifest in the same transaction, and commit only if every count agrees.
  psql.stdin.end(`${rowChecks(options.expectedRows)}COMMIT;\n`);
  await psqlDone;
  if (first !== undefined) throw unchanged(first);
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const quoteLiteral = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** A DO block that raises (and so rolls back) unless every table has the rows expected. */
function rowChecks(expected: Readonly<Record<string, number>>): string {
  const entries = Object.entries(expected);
  if (entries.length === 0) return "";
  const checks = entries.map(([name, rows]) => {
    const [schema = "", table = ""] = name.split(".", 2);
    const relation = `${quoteIdent(schema)}.${quoteIdent(table)}`;
    return [
      `  SELECT count(*) INTO n FROM ${relation};`,
      `  IF n <> ${Math.trunc(rows)} THEN RAISE EXCEPTION 'the restored % has % rows, the manifest says ${Math.trunc(rows)}', ${quoteLiteral(name)}, n; END IF;`,
    ].join("\n");
  });
  return `DO $$ DECLARE n bigint; BEGIN\n${checks.join("\n")}\nEND $$;\n`;
}

/** A restore's failure, saying that the transaction was rolled back. */
function unchanged(err: Error): BackupError {
  return new BackupError(
    err instanceof BackupError ? err.code : BackupErrorCode.ToolFailed,
    `${err.message}; the database was not changed`,
    { cause: err },
  );
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));
