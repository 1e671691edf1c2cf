import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../../db/index.js";
import { NotFoundError } from "../../kernel/index.js";
import { objects } from "./schema.js";

export type PlatformObject = typeof objects.$inferSelect;

/**
 * The platform context: the platform configuration as applied from Git (every kind's spec and
 * the status the controllers computed), so the rest of the control plane reads it from
 * PostgreSQL whether it came from a cluster or a directory.
 */
export class PlatformStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.platform);
  }

  /** Records the spec of an object as applied (created or changed). */
  upsert(
    tx: Tx,
    input: { kind: string; name: string; generation: number; spec: Record<string, unknown> },
  ): Promise<PlatformObject> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .insert(objects)
        .values(input)
        .onConflictDoUpdate({
          target: [objects.kind, objects.name],
          set: {
            generation: input.generation,
            spec: input.spec,
            version: sql`${objects.version} + 1`,
            updatedAt: sql`now()`,
          },
        })
        .returning();
      return row as PlatformObject;
    });
  }

  /** Records what a controller observed. @throws {NotFoundError} */
  setStatus(
    tx: Tx,
    kind: string,
    name: string,
    status: Record<string, unknown>,
    observedGeneration: number,
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(objects)
        .set({
          status,
          observedGeneration,
          version: sql`${objects.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(and(eq(objects.kind, kind), eq(objects.name, name)))
        .returning({ name: objects.name });
      if (!row) throw new NotFoundError(kind, name);
    });
  }

  remove(tx: Tx, kind: string, name: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q.delete(objects).where(and(eq(objects.kind, kind), eq(objects.name, name)));
    });
  }

  /** @throws {NotFoundError} */
  async get(kind: string, name: string, tx?: Tx): Promise<PlatformObject> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(objects)
        .where(and(eq(objects.kind, kind), eq(objects.name, name))),
    );
    if (!row) throw new NotFoundError(kind, name);
    return row;
  }

  /**
   * The `Stalled=True` condition of an object, if its last change was refused by the platform
   * controller (it keeps working with the spec it had); undefined when it is not stalled or was
   * never recorded.
   */
  async stalled(
    kind: string,
    name: string,
    tx?: Tx,
  ): Promise<{ reason: string; message: string } | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select({ status: objects.status })
        .from(objects)
        .where(and(eq(objects.kind, kind), eq(objects.name, name))),
    );
    return row ? stalledOf(row.status) : undefined;
  }

  /** Objects of several kinds in one statement, by kind and name. */
  listKinds(kinds: readonly string[], tx?: Tx): Promise<PlatformObject[]> {
    return this.reading(tx, (q) =>
      q
        .select()
        .from(objects)
        .where(inArray(objects.kind, [...kinds]))
        .orderBy(asc(objects.kind), asc(objects.name)),
    );
  }

  list(kind: string, tx?: Tx): Promise<PlatformObject[]> {
    return this.reading(tx, (q) =>
      q.select().from(objects).where(eq(objects.kind, kind)).orderBy(asc(objects.name)),
    );
  }
}

/** The `Stalled=True` condition of a status, if it has one. */
export function stalledOf(
  status: Record<string, unknown>,
): { reason: string; message: string } | undefined {
  const conditions = status.conditions;
  if (!Array.isArray(conditions)) return undefined;
  const stalled = (conditions as Record<string, unknown>[]).find(
    (c) => c.type === "Stalled" && c.status === "True",
  );
  if (!stalled) return undefined;
  const text = (value: unknown) => (typeof value === "string" ? value : "");
  return { reason: text(stalled.reason), message: text(stalled.message) };
}
