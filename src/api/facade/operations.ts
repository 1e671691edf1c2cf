import { actorOf } from "../../auth/index.js";
import { type Backup, BackupStore, LeaseStore } from "../../contexts/runtime/index.js";
import type { Database } from "../../db/index.js";
import type { IdGenerator } from "../../kernel/index.js";
import { NotFoundError } from "../../kernel/index.js";
import {
  type BackupContext,
  BackupService,
  type DatabaseStatus,
  databaseStatus,
  type RunningBackup,
} from "../../maintenance/index.js";
import { type CallContext, isUuid, requireOperator } from "./scope.js";

/** What operators look after: leases and replicas, the database's health, backups. */
export class OperationsFacade {
  readonly #db: Database;
  readonly #backups: BackupService;
  readonly #backupStore: BackupStore;

  constructor(deps: { db: Database; newId: IdGenerator; now: () => Date }) {
    this.#db = deps.db;
    this.#backups = new BackupService(deps);
    this.#backupStore = new BackupStore(deps.db);
  }

  /** Shard leases, the platform controllers' leader lease and the replicas (operators). */
  listLeases(ctx: CallContext): ReturnType<LeaseStore["overview"]> {
    requireOperator(ctx, "read leases");
    return new LeaseStore(this.#db).overview();
  }

  /** The system of record's health and its catalogue of backups and restores (`dv db status`). */
  databaseStatus(ctx: CallContext): Promise<DatabaseStatus> {
    requireOperator(ctx, "read the database status");
    return databaseStatus(this.#db);
  }

  /**
   * Starts a backup of the whole database or one context's schema, streamed to the caller;
   * recorded and audited.
   *
   * @throws {BackupError} when the dump tool is missing or refuses the server.
   */
  startBackup(ctx: CallContext, context?: BackupContext): Promise<RunningBackup> {
    requireOperator(ctx, "take backups");
    return this.#backups.start({
      actor: actorOf(ctx.principal),
      correlationId: ctx.correlationId,
      context,
    });
  }

  listBackups(ctx: CallContext, limit: number): Promise<Backup[]> {
    requireOperator(ctx, "read backups");
    return this.#backupStore.list(limit);
  }

  /** @throws {NotFoundError} */
  getBackup(ctx: CallContext, id: string): Promise<Backup> {
    requireOperator(ctx, "read backups");
    if (!isUuid(id)) throw new NotFoundError("backup", id);
    return this.#backupStore.get(id);
  }
}
