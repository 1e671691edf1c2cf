import { and, asc, eq, gt, gte, lt } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import type { Page } from "../../kernel/index.js";
import { records } from "./schema.js";

export type AuditRecord = typeof records.$inferSelect;

/** One change to record. */
export interface AuditEntry {
  readonly actor: string;
  readonly tenantId?: string | null;
  /** The project it is about, when it is about something in one. */
  readonly projectId?: string | null;
  readonly datacenterId: string;
  readonly action: string;
  readonly resourceKind: string;
  readonly resourceId: string;
  /** A summary of the state before (never secrets). */
  readonly before?: Record<string, unknown> | null;
  readonly after?: Record<string, unknown> | null;
  readonly correlationId: string;
}

/** Filters of {@link AuditStore.list}. */
export interface AuditFilter {
  readonly tenantId?: string;
  /** Only records about this project (those about no project are left out). */
  readonly projectId?: string;
  readonly resourceKind?: string;
  readonly resourceId?: string;
  readonly actor?: string;
  readonly from?: Date;
  readonly to?: Date;
}

/**
 * The audit context: an append-only record of every change. The database refuses to update or
 * delete a record, for every role.
 */
export class AuditStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.audit);
  }

  /** Appends a record inside the transaction of the change it describes. */
  record(tx: Tx, entry: AuditEntry): Promise<AuditRecord> {
    return this.inTx(tx, async (q) => {
      const [row] = await q.insert(records).values(entry).returning();
      return row as AuditRecord;
    });
  }

  /** Appends `entries`: one statement whatever their number. */
  recordMany(tx: Tx, entries: readonly AuditEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return this.inTx(tx, async (q) => {
      await q.insert(records).values([...entries]);
    });
  }

  /** Records in the order they were written, filtered; the cursor is the last record's id. */
  async list(
    filter: AuditFilter,
    options: { limit: number; after?: string | undefined },
    tx?: Tx,
  ): Promise<Page<AuditRecord>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(records)
        .where(
          and(
            filter.tenantId ? eq(records.tenantId, filter.tenantId) : undefined,
            filter.projectId ? eq(records.projectId, filter.projectId) : undefined,
            filter.resourceKind ? eq(records.resourceKind, filter.resourceKind) : undefined,
            filter.resourceId ? eq(records.resourceId, filter.resourceId) : undefined,
            filter.actor ? eq(records.actor, filter.actor) : undefined,
            filter.from ? gte(records.at, filter.from) : undefined,
            filter.to ? lt(records.at, filter.to) : undefined,
            options.after ? gt(records.id, Number(options.after)) : undefined,
          ),
        )
        .orderBy(asc(records.id))
        .limit(options.limit + 1),
    );
    if (rows.length <= options.limit) return { items: rows };
    const items = rows.slice(0, options.limit);
    return { items, next: String(items[items.length - 1]?.id) };
  }
}
