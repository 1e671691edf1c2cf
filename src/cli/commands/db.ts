import { createHash } from "node:crypto";
import { createWriteStream, existsSync, renameSync, rmSync } from "node:fs";
import { userInfo } from "node:os";
import { resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { loadConfig } from "../../config/index.js";
import type { BackupError } from "../../db/index.js";
import { newId } from "../../kernel/index.js";
import { createLogger } from "../../observability/index.js";
import { type ApiTarget, callApi, requestApi, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { age, type OutputFormat, print, table, withOutputOption } from "../output.js";

interface Backup {
  id: string;
  state: string;
  format: string;
  actor: string;
  startedAt: string;
  finishedAt: string | null;
  bytes: number | null;
  sha256: string | null;
  latestMigration: string | null;
  error: string | null;
}

interface Status {
  engine: string;
  target: string;
  serverVersion: string;
  role: string;
  sizeBytes: number;
  connections: {
    total: number;
    max: number;
    active: number;
    byApplication: { name: string; count: number }[];
  };
  replication: {
    replicas: {
      name: string;
      clientAddr: string | null;
      state: string;
      syncState: string;
      lagBytes: number | null;
      replayLagSeconds: number | null;
    }[];
    replayLagSeconds: number | null;
  };
  schemas: { name: string; tables: number; bytes: number }[];
  migrations: { applied: number; available: number; latest: string | null };
  liveReplicas: string[];
  lastBackup: Backup | null;
  backups: Backup[];
  restores: {
    restoredAt: string;
    actor: string;
    sha256: string;
    backupId: string | null;
    backupTakenAt: string | null;
    durationMs: number;
  }[];
}

/** `1.2 MiB`: sizes as people read them. */
export function humanBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function statusText(s: Status): string {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${`${k}:`.padEnd(14)}${v}`);
  kv(
    "Database",
    `${s.target} (${s.engine === "pglite" ? "embedded PGlite" : "PostgreSQL"} ${s.serverVersion}, ${s.role})`,
  );
  kv("Size", humanBytes(s.sizeBytes));
  const embedded = s.engine === "pglite";
  kv(
    "Connections",
    embedded
      ? "one, inside the dv dev process (embedded)"
      : `${s.connections.total} of ${s.connections.max}, ${s.connections.active} active` +
          (s.connections.byApplication.length
            ? ` (${s.connections.byApplication.map((a) => `${a.name} ${a.count}`).join(", ")})`
            : ""),
  );
  kv(
    "Replication",
    embedded
      ? "none (embedded; back it up with dv db backup)"
      : s.role === "replica"
        ? `replica, ${s.replication.replayLagSeconds === null ? "nothing replayed yet" : `${s.replication.replayLagSeconds.toFixed(1)}s behind its primary's last commit`}`
        : s.replication.replicas.length === 0
          ? "no replicas stream from this server"
          : s.replication.replicas
              .map(
                (r) =>
                  `${r.name} ${r.state}/${r.syncState}, ${r.lagBytes === null ? "?" : humanBytes(r.lagBytes)} behind`,
              )
              .join("; "),
  );
  kv(
    "Migrations",
    `${s.migrations.applied} of ${s.migrations.available} applied; latest ${s.migrations.latest ?? "none"}`,
  );
  kv("Controllers", s.liveReplicas.length ? s.liveReplicas.join(", ") : "none running");
  const last = s.lastBackup;
  kv(
    "Last backup",
    last
      ? `${last.finishedAt ?? last.startedAt} (${age(last.finishedAt ?? last.startedAt)} ago), ${humanBytes(last.bytes ?? 0)}, sha256 ${last.sha256?.slice(0, 12) ?? "?"}…, by ${last.actor}`
      : "none: take one with dv db backup",
  );
  const restore = s.restores[0];
  if (restore)
    kv(
      "Last restore",
      `${restore.restoredAt} by ${restore.actor}, of a backup taken ${restore.backupTakenAt ?? "at an unknown time"} (${(restore.durationMs / 1000).toFixed(1)} s)`,
    );
  lines.push("");
  lines.push(
    table(
      ["schema", "tables", "size"],
      s.schemas.map((x) => [x.name, String(x.tables), humanBytes(x.bytes)]),
    ).trimEnd(),
  );
  if (s.backups.length) {
    lines.push("");
    lines.push(
      table(
        ["backup", "state", "format", "size", "age", "by"],
        s.backups.map((b) => [
          b.id,
          b.state,
          b.format,
          b.bytes === null ? "" : humanBytes(b.bytes),
          age(b.startedAt),
          b.actor,
        ]),
      ).trimEnd(),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The exit code of each {@link BackupError} code. */
const EXIT_BY_BACKUP_CODE: Readonly<Record<BackupError["code"], ExitCode>> = {
  DV_BACKUP_DATABASE_IN_USE: ExitCode.Conflict,
  DV_BACKUP_WRONG_FORMAT: ExitCode.Usage,
  DV_BACKUP_TOOL_MISSING: ExitCode.Unavailable,
  DV_BACKUP_TOOL_FAILED: ExitCode.Failed,
};

/** Maps a maintenance failure onto its exit code, with what to do in the message. */
function backupFailure(err: unknown): never {
  // By name and code: the class lives in the database adapters, which this module loads lazily.
  if (err instanceof Error && err.name === "BackupError") {
    const exit = EXIT_BY_BACKUP_CODE[(err as BackupError).code] ?? ExitCode.Failed;
    throw new CliError(err.message, exit, { cause: err });
  }
  throw err;
}

/** Adds `dv db status|backup|restore`: the system of record, for operators. */
export function registerDb(program: Command): void {
  const db = program
    .command("db")
    .description("the PostgreSQL system of record: health, backups and restores (operators)")
    .addHelpText(
      "after",
      "\nstatus and backup call the API as an operator; restore works on the database itself,\nwith the control plane stopped.\n",
    );

  withOutputOption(
    withApiOptions(
      db
        .command("status")
        .description(
          "server, role, size, connections, replication, migrations and the newest backups",
        ),
    ),
  )
    .addHelpText("after", "\nExamples:\n  npx dv db status\n  npx dv db status -o json\n")
    .action(async (flags: ApiTarget & { output: OutputFormat }) => {
      const s = await callApi<Status>(flags, "GET", "/database");
      print(flags.output, s, () => statusText(s));
    });

  withApiOptions(
    db
      .command("backup")
      .description(
        "take a backup while the control plane runs and download it (pg_dump custom format, or the embedded database's data directory)",
      )
      .option("-f, --file <path>", "where to write it (default: the name the server gives, here)"),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  npx dv db backup\n  npx dv db backup -f /backups/dataverket-$(date +%F).dump\n",
    )
    .action(async (flags: ApiTarget & { file?: string }) => {
      // The headers come once the dump has begun (within 2 minutes); the body may take as long
      // as the database is big.
      const abort = new AbortController();
      const headersDue = setTimeout(() => abort.abort(new Error("no answer in 120 s")), 120_000);
      let response: Response;
      try {
        response = await requestApi(flags, "POST", "/database/backups", {
          signal: abort.signal,
          accept: "application/octet-stream",
        });
      } finally {
        clearTimeout(headersDue);
      }
      const id = response.headers.get("dv-backup-id") ?? "";
      const given = /filename="([^"/\\]+)"/.exec(
        response.headers.get("content-disposition") ?? "",
      )?.[1];
      const file = resolve(flags.file ?? given ?? `dataverket-${id}.backup`);
      if (existsSync(file))
        throw new CliError(`${file} exists: pass another --file`, ExitCode.Usage);
      const partial = `${file}.partial`;
      // Ctrl-C leaves nothing half-written behind; the server records the backup failed.
      const interrupted = () => {
        rmSync(partial, { force: true });
        process.exit(ExitCode.Interrupted);
      };
      process.once("SIGINT", interrupted);
      const hash = createHash("sha256");
      let bytes = 0;
      const started = Date.now();
      try {
        if (!response.body) throw new Error("the response has no body");
        await pipeline(
          Readable.fromWeb(response.body),
          new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              hash.update(chunk);
              bytes += chunk.length;
              callback(null, chunk);
            },
          }),
          createWriteStream(partial, { flags: "wx", mode: 0o600 }),
        );
      } catch (err) {
        rmSync(partial, { force: true });
        throw new CliError(
          `the backup ${id} broke off after ${humanBytes(bytes)} (${err instanceof Error ? err.message : String(err)}); nothing was kept: dv db status says why, then try again`,
          ExitCode.Failed,
          { cause: err },
        );
      }
      const sha256 = hash.digest("hex");
      // The server records the digest of what it sent once it is done; both must agree.
      let record: Backup | undefined;
      for (let i = 0; i < 50; i++) {
        record = await callApi<Backup>(flags, "GET", `/database/backups/${id}`);
        if (record.state !== "running") break;
        await new Promise((r) => setTimeout(r, 100));
      }
      if (record?.state !== "succeeded" || record.sha256 !== sha256) {
        rmSync(partial, { force: true });
        throw new CliError(
          record?.state === "failed"
            ? `the backup ${id} failed: ${record.error ?? "no reason recorded"}`
            : `the backup ${id} does not match what the server recorded (state ${record?.state ?? "unknown"}, sha256 ${record?.sha256 ?? "none"}, received ${sha256}); nothing was kept`,
          ExitCode.Failed,
        );
      }
      renameSync(partial, file);
      process.removeListener("SIGINT", interrupted);
      process.stdout.write(
        `backup ${id} written to ${file}\n` +
          `  ${humanBytes(bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s, ${record.format} format, sha256 ${sha256}\n` +
          `  restore it with the control plane stopped: dv db restore ${file} --yes\n`,
      );
    });

  db.command("restore")
    .description(
      "replace the whole database with a backup (offline: stop the control plane first); a failed restore changes nothing",
    )
    .argument("<file>", "a file dv db backup wrote")
    .option("--yes", "yes, replace every tenant, resource, task and audit record with the backup's")
    .option("--force", "restore even though other sessions are connected to the database")
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .addHelpText(
      "after",
      "\nWith DATABASE_URL it restores that server (pg_restore and psql must be installed);\nwithout, the embedded database of dv dev (DV_PGLITE_DIR), whose old directory is kept.\n\nExamples:\n  DATABASE_URL=postgres://dv@db/dataverket dv db restore dataverket-20261201T081200Z.dump --yes\n  npx dv db restore dataverket-20261201T081200Z.tar.gz --yes\n",
    )
    .action(async (file: string, flags: { yes?: boolean; force?: boolean; config?: string }) => {
      const config = loadConfig({ file: flags.config });
      const path = resolve(file);
      if (!existsSync(path)) throw new CliError(`${path} does not exist`, ExitCode.Usage);
      const target = config.database.url
        ? new URL(config.database.url).host + new URL(config.database.url).pathname
        : config.database.pgliteDir;
      if (!flags.yes)
        throw new CliError(
          `a restore replaces every tenant, resource, task and audit record in ${target} with the backup's; pass --yes to go ahead`,
          ExitCode.Usage,
        );
      const log = createLogger({
        level: "warn",
        service: "dv-restore",
        datacenterId: config.datacenterId,
      });
      const user = userInfo().username;
      // Loaded only for a restore: the database adapters are not needed to talk to the API.
      const { restoreDatabase } = await import("../../maintenance/index.js");
      const result = await restoreDatabase({
        target: {
          url: config.database.url,
          pgliteDir: config.database.pgliteDir,
          pgBinDir: config.database.pgBinDir,
        },
        file: path,
        actor: `local:${user}`,
        force: flags.force === true,
        log,
        newId,
        now: () => new Date(),
      }).catch(backupFailure);
      const taken = result.takenAt
        ? `taken ${result.takenAt.toISOString()}`
        : "taken at an unknown time";
      process.stdout.write(
        `restored ${result.target} from ${path} (${humanBytes(result.bytes)}, ${taken}${result.backup ? `, backup ${result.backup.id}` : ""}) in ${(result.durationMs / 1000).toFixed(1)} s\n` +
          `  migrations: ${result.migrations.applied} of ${result.migrations.available} applied; latest ${result.migrations.latest ?? "none"}\n` +
          (result.previous ? `  the previous database is kept in ${result.previous}\n` : "") +
          "  start the control plane again; it re-sends what NATS lost from the outbox and reconciles\n",
      );
    });
}
