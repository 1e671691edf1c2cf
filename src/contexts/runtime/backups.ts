import { and, desc, eq, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import { NotFoundError } from "../../kernel/index.js";
import { backups, restores } from "./schema.js";

export type Backup = typeof backups.$inferSelect;
export type Restore = typeof restores.$inferSelect;

/** What a restore records, written into the restored database. */
export interface NewRestore {
  readonly id: string;
  readonly actor: string;
  readonly format: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly durationMs: number;
  /** The backup row the file matched in the database before the restore, if any. */
  readonly backup?: Backup | undefined;
  /** When the backup was taken, when known without a matching row (the dump's own header). */
  readonly takenAt?: Date | undefined;
  /** `database`, or the context restored. */
  readonly scope: string;
  /** The invariants that did not hold after it. */
  readonly violations: readonly string[];
}

/**
 * The record of backups and restores of this database: what backup exists, how recent it is,
 * and what was restored when. The backup files are the operator's; this is their catalogue.
 */
export class BackupStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.runtime);
  }

  /** Records a backup that is starting. */
  start(
    tx: Tx,
    input: {
      id: string;
      format: string;
      scope: string;
      actor: string;
      latestMigration: string | undefined;
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q.insert(backups).values({
        id: input.id,
        format: input.format,
        scope: input.scope,
        actor: input.actor,
        latestMigration: input.latestMigration ?? null,
      });
    });
  }

  /** Marks a running backup finished: everything was sent, `bytes` long with this digest. */
  succeed(
    id: string,
    result: {
      bytes: number;
      sha256: string;
      dataAsOf: Date | null;
      tables: Record<string, number> | null;
      serverVersion: string | null;
    },
  ): Promise<void> {
    return this.#finish(id, { state: "succeeded", ...result });
  }

  /** Marks a running backup failed, with why. */
  fail(id: string, error: string): Promise<void> {
    return this.#finish(id, { state: "failed", error: error.slice(0, 2000) });
  }

  #finish(
    id: string,
    values: {
      state: "succeeded" | "failed";
      bytes?: number;
      sha256?: string;
      error?: string;
      dataAsOf?: Date | null;
      tables?: Record<string, number> | null;
      serverVersion?: string | null;
    },
  ): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        await q
          .update(backups)
          .set({ ...values, finishedAt: sql`now()` })
          .where(and(eq(backups.id, id), eq(backups.state, "running")));
      }),
    );
  }

  /** @throws {NotFoundError} */
  async get(id: string): Promise<Backup> {
    const [row] = await this.reading(undefined, (q) =>
      q.select().from(backups).where(eq(backups.id, id)),
    );
    if (!row) throw new NotFoundError("backup", id);
    return row;
  }

  /** The newest backups first, of one state or all. */
  list(limit: number, state?: Backup["state"]): Promise<Backup[]> {
    return this.reading(undefined, (q) =>
      q
        .select()
        .from(backups)
        .where(state ? eq(backups.state, state) : undefined)
        .orderBy(desc(backups.startedAt), desc(backups.id))
        .limit(limit),
    );
  }

  /** The succeeded backup whose content has this digest, if this database recorded one. */
  async findBySha256(sha256: string): Promise<Backup | undefined> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select()
        .from(backups)
        .where(and(eq(backups.sha256, sha256), eq(backups.state, "succeeded")))
        .orderBy(desc(backups.startedAt))
        .limit(1),
    );
    return row;
  }

  /** When the newest succeeded backup finished, if there is one. */
  async lastSucceededAt(): Promise<Date | undefined> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select({ at: sql<Date | string | null>`max(${backups.finishedAt})` })
        .from(backups)
        .where(eq(backups.state, "succeeded")),
    );
    return row?.at ? new Date(row.at) : undefined;
  }

  /** The newest restores first. */
  listRestores(limit: number): Promise<Restore[]> {
    return this.reading(undefined, (q) =>
      q.select().from(restores).orderBy(desc(restores.restoredAt)).limit(limit),
    );
  }

  /**
   * Records a restore in the database it restored. The restored data was dumped while its own
   * backup was still `running`: that row is completed from the record the file matched before the
   * restore, and any other backup caught running is marked failed, since it can never finish.
   */
  recordRestore(tx: Tx, input: NewRestore): Promise<void> {
    return this.inTx(tx, async (q) => {
      const backup = input.backup;
      if (backup) {
        await q
          .insert(backups)
          .values(backup)
          .onConflictDoUpdate({
            target: backups.id,
            set: {
              state: backup.state,
              finishedAt: backup.finishedAt,
              bytes: backup.bytes,
              sha256: backup.sha256,
              error: backup.error,
              dataAsOf: backup.dataAsOf,
              tables: backup.tables,
              serverVersion: backup.serverVersion,
            },
          });
      }
      await q
        .update(backups)
        .set({
          state: "failed",
          finishedAt: sql`now()`,
          error: "interrupted: the database was restored from a backup taken while this one ran",
        })
        .where(eq(backups.state, "running"));
      await q.insert(restores).values({
        id: input.id,
        actor: input.actor,
        format: input.format,
        bytes: input.bytes,
        sha256: input.sha256,
        durationMs: input.durationMs,
        backupId: backup?.id ?? null,
        backupTakenAt: backup?.startedAt ?? input.takenAt ?? null,
        scope: input.scope,
        violations: [...input.violations],
      });
    });
  }
}
