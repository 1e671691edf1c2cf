import { z } from "zod";
import type { Backup as BackupRow, Restore as RestoreRow } from "../../contexts/runtime/index.js";
import { OWNED_SCHEMAS } from "../../db/index.js";
import { BACKUP_CONTEXTS, BackupManifest, manifestOf } from "../../maintenance/index.js";
import { callContext } from "../http-helpers.js";
import { Id } from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

const Backup = z
  .object({
    id: z.string(),
    state: z.enum(["running", "succeeded", "failed"]),
    format: z.enum(["pg_dump", "pglite"]).meta({
      description:
        "`pg_dump`: PostgreSQL's custom archive format (pg_restore reads it too); `pglite`: a gzipped tar of the embedded database's data directory.",
    }),
    actor: z.string(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    bytes: z.number().int().nullable(),
    sha256: z
      .string()
      .nullable()
      .meta({ description: "SHA-256 of everything sent, hex; compare it with the file's." }),
    latestMigration: z.string().nullable(),
    error: z.string().nullable(),
    scope: z
      .enum(["database", ...BACKUP_CONTEXTS])
      .meta({ description: "`database` (every schema), or the one bounded context backed up." }),
    schemas: z.array(z.string()).meta({ description: "The schemas in the snapshot." }),
    dataAsOf: z.string().nullable().meta({
      description:
        "The newest write to tenants, resources and tasks in the snapshot: a restore over a database with newer data is refused unless forced.",
    }),
    tables: z.record(z.string(), z.number().int()).nullable().meta({
      description:
        "Rows per `schema.table`, read in the snapshot itself; a restore checks them. Null for the embedded database.",
    }),
    serverVersion: z.string().nullable(),
    manifest: BackupManifest.nullable().meta({
      description:
        "What `dv db backup` writes as `manifest.json` beside the snapshot, once the backup succeeded; null before.",
    }),
  })
  .meta({ id: "Backup" });

const Restore = z
  .object({
    id: z.string(),
    restoredAt: z.string(),
    actor: z.string(),
    format: z.string(),
    bytes: z.number().int(),
    sha256: z.string(),
    backupId: z.string().nullable(),
    backupTakenAt: z.string().nullable(),
    durationMs: z.number().int(),
    scope: z.string(),
    violations: z
      .array(z.string())
      .meta({ description: "Invariants that did not hold after the restore; empty when all did." }),
  })
  .meta({ id: "Restore" });

const DatabaseStatus = z
  .object({
    engine: z.enum(["postgres", "pglite"]),
    target: z.string().meta({ description: "host:port/database, or the embedded data directory." }),
    serverVersion: z.string(),
    role: z.enum(["primary", "replica"]),
    sizeBytes: z.number(),
    connections: z.object({
      total: z.number().int(),
      max: z.number().int(),
      active: z.number().int(),
      byApplication: z.array(z.object({ name: z.string(), count: z.number().int() })),
    }),
    replication: z.object({
      replicas: z.array(
        z.object({
          name: z.string(),
          clientAddr: z.string().nullable(),
          state: z.string(),
          syncState: z.string(),
          lagBytes: z.number().nullable(),
          replayLagSeconds: z.number().nullable(),
        }),
      ),
      replayLagSeconds: z
        .number()
        .nullable()
        .meta({ description: "On a replica: time since the last transaction it replayed." }),
    }),
    schemas: z.array(z.object({ name: z.string(), tables: z.number().int(), bytes: z.number() })),
    migrations: z.object({
      applied: z.number().int(),
      available: z.number().int(),
      latest: z.string().nullable(),
    }),
    liveReplicas: z
      .array(z.string())
      .meta({ description: "Controller replicas whose lease membership is live." }),
    lastBackup: Backup.nullable().meta({ description: "The newest backup that succeeded." }),
    backups: z.array(Backup).meta({ description: "The newest backups, of every state." }),
    restores: z.array(Restore),
    recovery: z
      .array(
        z.object({
          context: z.string(),
          policy: z
            .object({
              context: z.string(),
              rpoClass: z.string(),
              rtoClass: z.string(),
              crossSiteReplication: z.string(),
              failover: z.string(),
            })
            .nullable()
            .meta({ description: "The context's RecoveryPolicy; null when none is applied." }),
          lastBackup: z
            .object({
              id: z.string(),
              scope: z.string(),
              finishedAt: z.string(),
              ageSeconds: z.number().int(),
            })
            .nullable(),
          expectedLossSeconds: z.number().int().nullable().meta({
            description:
              "Seconds of writes lost if the primary were lost now: the best replica's lag, else the age of the last backup; null: everything (no backup).",
          }),
          withinRpo: z.boolean().nullable(),
          promotion: z.object({
            state: z.enum(["safe", "blocked", "operator-gated"]),
            reason: z.string(),
          }),
        }),
      )
      .meta({ description: "Each bounded context's RecoveryPolicy next to the facts." }),
  })
  .meta({ id: "DatabaseStatus" });

function backupOut(b: BackupRow): z.infer<typeof Backup> {
  return {
    id: b.id,
    state: b.state as "running" | "succeeded" | "failed",
    format: b.format as "pg_dump" | "pglite",
    actor: b.actor,
    startedAt: b.startedAt.toISOString(),
    finishedAt: iso(b.finishedAt),
    bytes: b.bytes,
    sha256: b.sha256,
    latestMigration: b.latestMigration,
    error: b.error,
    scope: b.scope as z.infer<typeof Backup>["scope"],
    schemas: b.scope === "database" ? [...OWNED_SCHEMAS] : [b.scope],
    dataAsOf: iso(b.dataAsOf),
    tables: b.tables,
    serverVersion: b.serverVersion,
    manifest: manifestOf(b) ?? null,
  };
}

function restoreOut(r: RestoreRow): z.infer<typeof Restore> {
  return {
    id: r.id,
    restoredAt: r.restoredAt.toISOString(),
    actor: r.actor,
    format: r.format,
    bytes: r.bytes,
    sha256: r.sha256,
    backupId: r.backupId,
    backupTakenAt: iso(r.backupTakenAt),
    durationMs: r.durationMs,
    scope: r.scope,
    violations: r.violations,
  };
}

/**
 * The system of record for operators: its health and recovery state (`dv db status`) and backups
 * taken while it runs (`dv db backup`). Restores are offline, with the database itself
 * (`dv db restore`), never through the API.
 */
export function registerDatabaseRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade } = deps;

  app.get(
    "/database",
    {
      schema: {
        summary: "The database's health, replication and backups (operators)",
        description:
          "Server version and role (primary or replica), size, connections by application, replicas and their lag, the control plane's schemas, migrations, live controller replicas, and the newest backups and restores.",
        tags: ["operations"],
        response: { 200: DatabaseStatus, ...problems(403) },
      },
    },
    async (request) => {
      const s = await facade.databaseStatus(callContext(request));
      return {
        ...s,
        connections: { ...s.connections, byApplication: [...s.connections.byApplication] },
        replication: {
          replicas: [...s.replication.replicas],
          replayLagSeconds: s.replication.replayLagSeconds,
        },
        schemas: [...s.schemas],
        liveReplicas: [...s.liveReplicas],
        lastBackup: s.lastBackup ? backupOut(s.lastBackup) : null,
        backups: s.backups.map(backupOut),
        restores: s.restores.map(restoreOut),
        recovery: s.recovery.map((r) => ({ ...r })),
      };
    },
  );

  app.post(
    "/database/backups",
    {
      schema: {
        summary: "Take a backup and download it (operators)",
        description:
          "Streams a consistent snapshot of the whole database (or, with `context`, of one bounded context's schema) as it is taken (`application/octet-stream`, `Dv-Backup-Id`, `Dv-Backup-Format`, `Dv-Backup-Scope` and `Dv-Backup-Name` (a directory name) headers, the snapshot's file name in `Content-Disposition`), and records it: `GET /database/backups/{id}` then gives its size and SHA-256 to check the file against. A server is dumped with `pg_dump` (custom format), the embedded database as a copy of its data directory. Restore it with `dv db restore`, with the control plane stopped.",
        tags: ["operations"],
        querystring: z.strictObject({
          context: z.enum(BACKUP_CONTEXTS).optional().meta({
            description:
              "Only this bounded context's schema (a PostgreSQL server only); the whole database when absent.",
          }),
        }),
        response: {
          200: {
            description: "The backup, streamed as it is taken.",
            content: {
              "application/octet-stream": {
                schema: z.string().meta({ format: "binary" }),
              },
            },
          },
          ...problems(400, 403, 503),
        },
      },
    },
    async (request, reply) => {
      const backup = await facade.startBackup(callContext(request), request.query.context);
      request.log.info(
        { backup_id: backup.id, format: backup.format, scope: backup.scope },
        "backup started",
      );
      backup.finished.then(
        (b) =>
          request.log.info(
            { backup_id: b.id, bytes: b.bytes, sha256: b.sha256 },
            "backup succeeded",
          ),
        (err: unknown) => request.log.error({ err, backup_id: backup.id }, "backup failed"),
      );
      return (
        reply
          .header("dv-backup-id", backup.id)
          .header("dv-backup-format", backup.format)
          .header("dv-backup-scope", backup.scope)
          .header("dv-backup-name", backup.name)
          .header("content-disposition", `attachment; filename="${backup.fileName}"`)
          .type("application/octet-stream")
          // A stream is sent as it is, never serialised; the schema above documents its bytes.
          .send(backup.stream as unknown as string)
      );
    },
  );

  app.get(
    "/database/backups",
    {
      schema: {
        summary: "List backups, newest first (operators)",
        tags: ["operations"],
        querystring: z.strictObject({
          limit: z.coerce.number().int().min(1).max(500).default(20),
        }),
        response: { 200: z.object({ items: z.array(Backup) }), ...problems(400, 403) },
      },
    },
    async (request) => ({
      items: (await facade.listBackups(callContext(request), request.query.limit)).map(backupOut),
    }),
  );

  app.get(
    "/database/backups/:backup",
    {
      schema: {
        summary: "Get a backup's record: state, size, SHA-256 (operators)",
        tags: ["operations"],
        params: z.strictObject({ backup: Id }),
        response: { 200: Backup, ...problems(403, 404) },
      },
    },
    async (request) =>
      backupOut(await facade.getBackup(callContext(request), request.params.backup)),
  );
}
