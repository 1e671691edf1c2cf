import { z } from "zod";
import type { Backup as BackupRow, Restore as RestoreRow } from "../../contexts/runtime/index.js";
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
      };
    },
  );

  app.post(
    "/database/backups",
    {
      schema: {
        summary: "Take a backup and download it (operators)",
        description:
          "Streams a consistent snapshot of the whole database as it is taken (`application/octet-stream`, `Dv-Backup-Id` and `Dv-Backup-Format` headers, a file name in `Content-Disposition`), and records it: `GET /database/backups/{id}` then gives its size and SHA-256 to check the file against. A server is dumped with `pg_dump` (custom format), the embedded database as a copy of its data directory. Restore it with `dv db restore`, with the control plane stopped.",
        tags: ["operations"],
        response: {
          200: {
            description: "The backup, streamed as it is taken.",
            content: {
              "application/octet-stream": {
                schema: z.string().meta({ format: "binary" }),
              },
            },
          },
          ...problems(403, 503),
        },
      },
    },
    async (request, reply) => {
      const backup = await facade.startBackup(callContext(request));
      request.log.info({ backup_id: backup.id, format: backup.format }, "backup started");
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
