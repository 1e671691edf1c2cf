import { createHash } from "node:crypto";
import { Transform } from "node:stream";
import { finished } from "node:stream/promises";
import { AuditStore } from "../contexts/audit/index.js";
import { type Backup, BackupStore } from "../contexts/runtime/index.js";
import {
  BackupError,
  BackupErrorCode,
  type Database,
  inTransaction,
  migrationStatus,
  OWNED_SCHEMAS,
  type SnapshotFormat,
} from "../db/index.js";
import type { IdGenerator } from "../kernel/index.js";
import { type BackupContext, dataAsOf, tableCounts } from "./facts.js";
import { snapshotFileName } from "./manifest.js";

/** Who asks for a backup, for its record and the audit log, and of what. */
export interface BackupRequest {
  readonly actor: string;
  readonly correlationId: string;
  /** One bounded context's schema only; the whole database when absent. */
  readonly context?: BackupContext | undefined;
}

/** What a backup's snapshot was read to hold, for its manifest. */
interface SnapshotFacts {
  readonly dataAsOf: Date | null;
  readonly tables: Record<string, number> | null;
  readonly serverVersion: string | null;
}

/** A backup being streamed: read `stream` to the end, then `finished` says how it went. */
export interface RunningBackup {
  readonly id: string;
  readonly format: SnapshotFormat;
  /** `database`, or the context backed up. */
  readonly scope: string;
  /** A directory name for it: `dataverket-20261201T081200Z`, `…-inventory`. */
  readonly name: string;
  /** The snapshot's file name in that directory: `database.dump`, `inventory.dump`. */
  readonly fileName: string;
  readonly stream: NodeJS.ReadableStream & { destroy(error?: Error): void };
  /**
   * The record once everything was streamed (`succeeded`, with size and SHA-256).
   *
   * @throws {BackupError} when the dump failed or the stream was abandoned; recorded `failed`.
   */
  readonly finished: Promise<Backup>;
}

/**
 * Takes backups of the database while it is in use, streams them to the caller, and keeps their
 * record: `running`, then `succeeded` with size and digest, or `failed` with why. Every backup is
 * audited.
 */
export class BackupService {
  readonly #db: Database;
  readonly #newId: IdGenerator;
  readonly #now: () => Date;
  readonly #store: BackupStore;

  constructor(deps: { db: Database; newId: IdGenerator; now: () => Date }) {
    this.#db = deps.db;
    this.#newId = deps.newId;
    this.#now = deps.now;
    this.#store = new BackupStore(deps.db);
  }

  /**
   * Starts a backup. Resolves once the dump has produced its first bytes, so a dump tool that is
   * missing or refuses the server fails here, before anything is sent. The caller must read
   * `stream` to its end or destroy it.
   *
   * @throws {BackupError} `DV_BACKUP_TOOL_MISSING`, `DV_BACKUP_TOOL_FAILED`.
   */
  async start(request: BackupRequest): Promise<RunningBackup> {
    const id = this.#newId();
    const format: SnapshotFormat = this.#db.dialect === "postgres" ? "pg_dump" : "pglite";
    const scope = request.context ?? "database";
    if (request.context && format !== "pg_dump") {
      throw new BackupError(
        BackupErrorCode.Unsupported,
        "the embedded database is backed up whole: a backup of one context needs a PostgreSQL server (DATABASE_URL); leave out context",
      );
    }
    const { latest } = await migrationStatus(this.#db);
    await inTransaction(this.#db, async (tx) => {
      await this.#store.start(tx, {
        id,
        format,
        scope,
        actor: request.actor,
        latestMigration: latest,
      });
      await new AuditStore(this.#db).record(tx, {
        actor: request.actor,
        datacenterId: "-", // the database serves every datacenter
        action: "database.backup",
        resourceKind: "database",
        resourceId: id,
        after: { format, scope, latestMigration: latest ?? null },
        correlationId: request.correlationId,
      });
    });
    const schemas = request.context ? [request.context] : undefined;
    const hash = createHash("sha256");
    let bytes = 0;
    let started: () => void = () => undefined;
    const firstBytes = new Promise<void>((resolve) => (started = resolve));
    const counting = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        started();
        callback(null, chunk);
      },
    });
    let snapshot;
    try {
      snapshot = await this.#db.snapshot<SnapshotFacts>({
        schemas,
        inspect: async (query, exact) => {
          const [server] = await query<{ version: string }>(
            "SELECT current_setting('server_version') AS version",
          );
          return {
            dataAsOf: await dataAsOf(query, schemas),
            // Counts that may not match the copy would fail a good restore's check: none then.
            tables: exact ? await tableCounts(query, schemas ?? OWNED_SCHEMAS) : null,
            serverVersion: server?.version ?? null,
          };
        },
      });
      snapshot.stream.on("error", (err) => counting.destroy(err));
      snapshot.stream.pipe(counting);
      // A dump tool that is missing or refuses the server fails before its first byte.
      await Promise.race([firstBytes, snapshot.done]);
    } catch (err) {
      counting.destroy();
      await this.#store.fail(id, err instanceof Error ? err.message : String(err));
      throw err;
    }
    const { abort, done, facts } = snapshot;
    const outcome = (async () => {
      try {
        // The reader must take everything and the dump tool must exit cleanly.
        await Promise.all([done, finished(counting)]);
      } catch (err) {
        abort();
        const message =
          err instanceof BackupError
            ? err.message
            : `the backup was not received to its end: ${err instanceof Error ? err.message : String(err)}`;
        await this.#store.fail(id, message);
        throw err instanceof BackupError
          ? err
          : new BackupError(BackupErrorCode.ToolFailed, message, { cause: err });
      }
      await this.#store.succeed(id, { bytes, sha256: hash.digest("hex"), ...facts });
      return this.#store.get(id);
    })();
    // Whoever reads `finished` sees the failure; nobody reading it must not crash the process.
    outcome.catch(() => undefined);
    const stamp = this.#now()
      .toISOString()
      .replace(/[-:]/g, "")
      .replace(/\.\d+Z$/, "Z");
    return {
      id,
      format,
      scope,
      name: `dataverket-${stamp}${request.context ? `-${request.context}` : ""}`,
      fileName: snapshotFileName(scope, format),
      stream: counting,
      finished: outcome,
    };
  }
}
