// Tenant resources an API process has read, kept in memory and forgotten as the database
// announces each change of their rows (RESOURCE_CHANNEL, migration 0020). A read waits for the
// LISTEN barrier (`Database.sync`) first, so what it answers from memory is what a read of the
// database would have answered when the request came: every change committed before it has been
// announced and forgotten by then. Barriers are shared by the reads waiting at the same time, so
// a busy process sends one statement for many reads instead of one for each.
import type { Database, Unlisten } from "../../db/index.js";
import { NotFoundError } from "../../kernel/index.js";
import { RESOURCE_CHANNEL, type Resource } from "./model.js";

/** How many rows a process keeps; the least recently read go first. */
export const RESOURCE_CACHE_MAX = 10_000;

/** What the cache needs of the database: notifications and the barrier behind them. */
export type ResourceCacheDatabase = Pick<Database, "listen" | "sync">;

/**
 * Resources by id, fresh as of each read (see the file's comment). Without a barrier (PGlite, a
 * replica, or the LISTEN connection down) every read goes to the database.
 */
export class ResourceCache {
  readonly #db: ResourceCacheDatabase;
  readonly #read: (tenantId: string, id: string) => Promise<Resource>;
  readonly #max: number;
  readonly #rows = new Map<string, Resource>();
  #following = false;
  /** The LISTEN connection the rows were kept under; a new one may have missed announcements. */
  #epoch: number | undefined;
  /** Announcements handled so far. */
  #announced = 0;
  /** While reads of the database are in flight: when each id was last announced. */
  readonly #changedAt = new Map<string, number>();
  #reading = 0;

  constructor(
    db: ResourceCacheDatabase,
    read: (tenantId: string, id: string) => Promise<Resource>,
    max = RESOURCE_CACHE_MAX,
  ) {
    this.#db = db;
    this.#read = read;
    this.#max = max;
  }

  /**
   * Keeps rows from now on, forgetting each as its change is announced, until the returned
   * function is called.
   *
   * @throws when the database cannot LISTEN; reads then all go to the database.
   */
  async follow(): Promise<Unlisten> {
    if (this.#db.sync === undefined) return async () => undefined;
    const unlisten = await this.#db.listen(RESOURCE_CHANNEL, (payload) => this.#forget(payload));
    this.#following = true;
    return async () => {
      this.#following = false;
      this.#rows.clear();
      await unlisten();
    };
  }

  /** How many rows are kept. */
  get size(): number {
    return this.#rows.size;
  }

  /**
   * The tenant's resource `id`, as committed when the call was made.
   *
   * @throws {NotFoundError} when it does not exist or is another tenant's.
   */
  async get(tenantId: string, id: string): Promise<Resource> {
    const sync = this.#db.sync?.bind(this.#db);
    if (!this.#following || sync === undefined) return this.#read(tenantId, id);
    let epoch: number;
    try {
      epoch = await sync();
    } catch {
      // No barrier, no freshness: what is kept may have missed announcements.
      this.#rows.clear();
      this.#epoch = undefined;
      return this.#read(tenantId, id);
    }
    if (epoch !== this.#epoch) {
      this.#rows.clear();
      this.#epoch = epoch;
    }
    const kept = this.#rows.get(id);
    if (kept !== undefined) {
      if (kept.tenantId !== tenantId) throw new NotFoundError("resource", id);
      this.#rows.delete(id);
      this.#rows.set(id, kept);
      return kept;
    }
    const before = this.#announced;
    this.#reading++;
    try {
      const row = await this.#read(tenantId, id);
      // Kept only when no change of it was announced since the read began: the row read may be
      // older than that change.
      if (this.#following && this.#epoch === epoch && (this.#changedAt.get(id) ?? -1) < before) {
        this.#rows.set(id, row);
        if (this.#rows.size > this.#max)
          this.#rows.delete(this.#rows.keys().next().value as string);
      }
      return row;
    } finally {
      if (--this.#reading === 0) this.#changedAt.clear();
    }
  }

  #forget(payload: string): void {
    const seq = ++this.#announced;
    for (const id of payload.split(",")) {
      this.#rows.delete(id);
      if (this.#reading > 0) this.#changedAt.set(id, seq);
    }
  }
}
