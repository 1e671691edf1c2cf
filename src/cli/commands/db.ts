import { createHash } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Command } from "commander";
import { loadConfig } from "../../config/index.js";
import type { BackupError } from "../../db/index.js";
import { newId } from "../../kernel/index.js";
// eslint-disable-next-line no-restricted-imports -- the list alone: the rest of maintenance loads only for a restore
import { BACKUP_CONTEXTS } from "../../maintenance/facts.js";
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
  scope: string;
  schemas: string[];
  dataAsOf: string | null;
  tables: Record<string, number> | null;
  serverVersion: string | null;
  manifest: { files: { name: string; bytes: number; sha256: string }[] } | null;
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
    scope: string;
    violations: string[];
  }[];
  recovery: {
    context: string;
    policy: {
      rpoClass: string;
      rtoClass: string;
      crossSiteReplication: string;
      failover: string;
    } | null;
    lastBackup: { id: string; scope: string; ageSeconds: number } | null;
    expectedLossSeconds: number | null;
    withinRpo: boolean | null;
    promotion: { state: string; reason: string };
  }[];
}

const CONTEXTS: readonly string[] = BACKUP_CONTEXTS;

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

/** `42 s`, `15 min`, `3.5 h`, `2.0 d`. */
function humanSeconds(n: number): string {
  if (n < 120) return `${n} s`;
  if (n < 7200) return `${Math.round(n / 60)} min`;
  if (n < 172800) return `${(n / 3600).toFixed(1)} h`;
  return `${(n / 86400).toFixed(1)} d`;
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
  lines.push("");
  lines.push(
    table(
      ["context", "rpo", "rto", "cross-site", "failover", "last backup", "loss now", "promotion"],
      s.recovery.map((r) => [
        r.context,
        r.policy?.rpoClass ?? "-",
        r.policy?.rtoClass ?? "-",
        r.policy?.crossSiteReplication ?? "-",
        r.policy?.failover ?? "-",
        r.lastBackup ? `${humanSeconds(r.lastBackup.ageSeconds)} ago` : "none",
        (r.expectedLossSeconds === null ? "everything" : humanSeconds(r.expectedLossSeconds)) +
          (r.withinRpo === false ? " (over RPO)" : ""),
        r.promotion.state,
      ]),
    ).trimEnd(),
  );
  // The reasons are sentences: one line each, under the table.
  for (const r of s.recovery) lines.push(`  ${r.context}: ${r.promotion.reason}`);
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
  DV_BACKUP_NEWER_DATA: ExitCode.Conflict,
  DV_BACKUP_MANIFEST_MISMATCH: ExitCode.Failed,
  DV_BACKUP_UNSUPPORTED: ExitCode.Usage,
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
        "take a backup while the control plane runs: a directory with the snapshot (pg_dump custom format, or the embedded database's data directory) and its manifest",
      )
      .argument("[dir]", "where to create the backup's directory", ".")
      .option(
        "--context <name>",
        `only one bounded context's schema (PostgreSQL only): ${CONTEXTS.join(", ")}`,
      ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  npx dv db backup /backups\n  npx dv db backup /backups --context inventory\n",
    )
    .action(async (dir: string, flags: ApiTarget & { context?: string }) => {
      if (flags.context !== undefined && !CONTEXTS.includes(flags.context)) {
        throw new CliError(
          `--context: ${flags.context} is not a bounded context; one of ${CONTEXTS.join(", ")}`,
          ExitCode.Usage,
        );
      }
      const parent = resolve(dir);
      if (!existsSync(parent) || !statSync(parent).isDirectory())
        throw new CliError(`${parent} is not a directory: create it first`, ExitCode.Usage);
      // The headers come once the dump has begun (within 2 minutes); the body may take as long
      // as the database is big.
      const abort = new AbortController();
      const headersDue = setTimeout(() => abort.abort(new Error("no answer in 120 s")), 120_000);
      let response: Response;
      try {
        response = await requestApi(
          flags,
          "POST",
          `/database/backups${flags.context ? `?context=${flags.context}` : ""}`,
          { signal: abort.signal, accept: "application/octet-stream" },
        );
      } finally {
        clearTimeout(headersDue);
      }
      const id = response.headers.get("dv-backup-id") ?? "";
      const name = response.headers.get("dv-backup-name") ?? `dataverket-${id}`;
      const fileName =
        /filename="([^"/\\]+)"/.exec(response.headers.get("content-disposition") ?? "")?.[1] ??
        "database.backup";
      const target = join(parent, name);
      if (existsSync(target))
        throw new CliError(
          `${target} exists: move it away or pick another directory`,
          ExitCode.Usage,
        );
      const partial = `${target}.partial`;
      mkdirSync(partial, { mode: 0o700 });
      // Ctrl-C leaves nothing half-written behind; the server records the backup failed.
      const interrupted = () => {
        rmSync(partial, { recursive: true, force: true });
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
          createWriteStream(join(partial, fileName), { flags: "wx", mode: 0o600 }),
        );
      } catch (err) {
        rmSync(partial, { recursive: true, force: true });
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
        rmSync(partial, { recursive: true, force: true });
        throw new CliError(
          record?.state === "failed"
            ? `the backup ${id} failed: ${record.error ?? "no reason recorded"}`
            : `the backup ${id} does not match what the server recorded (state ${record?.state ?? "unknown"}, sha256 ${record?.sha256 ?? "none"}, received ${sha256}); nothing was kept`,
          ExitCode.Failed,
        );
      }
      // The server's manifest describes what it sent; it must name the file written.
      const manifest = record.manifest;
      if (manifest?.files[0]?.name !== fileName || manifest.files[0].sha256 !== sha256) {
        rmSync(partial, { recursive: true, force: true });
        throw new CliError(
          `the backup ${id} came without a manifest for ${fileName}; nothing was kept: try again`,
          ExitCode.Failed,
        );
      }
      writeFileSync(join(partial, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`, {
        mode: 0o600,
      });
      renameSync(partial, target);
      process.removeListener("SIGINT", interrupted);
      const counted = record.tables
        ? `${Object.keys(record.tables).length} tables, ${Object.values(record.tables).reduce((a, b) => a + b, 0)} rows counted`
        : "row counts not recorded (embedded database)";
      process.stdout.write(
        `backup ${id} written to ${target}\n` +
          `  ${record.scope === "database" ? "the whole database" : `the ${record.scope} context`}: ${fileName}, ${humanBytes(bytes)} in ${((Date.now() - started) / 1000).toFixed(1)} s, sha256 ${sha256}\n` +
          `  manifest.json: taken ${record.startedAt}, data as of ${record.dataAsOf ?? "(empty)"}, ${counted}\n` +
          `  restore it with the control plane stopped: dv db restore ${target} --yes\n`,
      );
    });

  db.command("restore")
    .description(
      "restore a backup directory (offline: stop the control plane first): verify its manifest, refuse newer data, replay it, migrate, check the invariants; a failed restore changes nothing",
    )
    .argument("<dir>", "a directory dv db backup wrote (with manifest.json)")
    .option("--yes", "yes, replace the data of the backup's scope with the backup's")
    .option("--force", "restore even though the database has data newer than the backup")
    .option("--even-if-connected", "restore even though other sessions are connected")
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .addHelpText(
      "after",
      "\nWith DATABASE_URL it restores that server (pg_restore and psql must be installed);\nwithout, the embedded database of dv dev (DV_PGLITE_DIR), whose old directory is kept.\nA backup of one context (dv db backup --context) replaces that context's schema only.\n\nExamples:\n  DATABASE_URL=postgres://dv@db/dataverket dv db restore /backups/dataverket-20261201T081200Z --yes\n  npx dv db restore dataverket-20261201T081200Z --yes\n",
    )
    .action(
      async (
        dir: string,
        flags: { yes?: boolean; force?: boolean; evenIfConnected?: boolean; config?: string },
      ) => {
        const config = loadConfig({ file: flags.config });
        const path = resolve(dir);
        if (!existsSync(path)) throw new CliError(`${path} does not exist`, ExitCode.Usage);
        const target = config.database.url
          ? new URL(config.database.url).host + new URL(config.database.url).pathname
          : config.database.pgliteDir;
        if (!flags.yes)
          throw new CliError(
            `a restore replaces the tenants, resources, tasks and audit records in ${target} with the backup's; pass --yes to go ahead`,
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
          path,
          actor: `local:${user}`,
          force: flags.force === true,
          evenIfConnected: flags.evenIfConnected === true,
          log,
          newId,
          now: () => new Date(),
        }).catch(backupFailure);
        const m = result.manifest;
        const [file] = m.files;
        const broken = result.invariants.filter((i) => i.violations > 0);
        process.stdout.write(
          `restored ${result.target} from ${path} in ${(result.durationMs / 1000).toFixed(1)} s\n` +
            `  backup ${m.id}: ${m.scope === "database" ? "the whole database" : `the ${m.scope} context`}, taken ${m.takenAt}, ${humanBytes(file?.bytes ?? 0)}, sha256 verified\n` +
            `  rows: ${result.tablesVerified > 0 ? `${result.tablesVerified} tables match the manifest` : "not in the manifest (embedded database); not checked"}\n` +
            `  migrations: ${result.migrations.applied} of ${result.migrations.available} applied; latest ${result.migrations.latest ?? "none"}\n` +
            result.invariants
              .map(
                (i) =>
                  `  ${i.violations === 0 ? "ok  " : "FAIL"} ${i.description}${i.violations ? ` (${i.violations})` : ""}\n`,
              )
              .join("") +
            (result.previous ? `  the previous database is kept in ${result.previous}\n` : "") +
            "  start the control plane again; it re-sends what NATS lost from the outbox and reconciles\n",
        );
        if (broken.length > 0) {
          throw new CliError(
            `restored, but ${broken.length} invariant(s) do not hold: ${broken.map((i) => i.description).join("; ")}; keep the control plane stopped and see docs/runbooks/database-recovery.md`,
            ExitCode.Failed,
          );
        }
      },
    );
}
