import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { ContextRole, ContextStore, type Database, type Tx } from "../db/index.js";
import { devices, effects, faults } from "./schema.js";

export type Device = typeof devices.$inferSelect;
export type Effect = typeof effects.$inferSelect;
export type Fault = typeof faults.$inferSelect;

/** The resource id of a fault that hits every resource of its service (the nil UUID). */
export const EVERY_RESOURCE = "00000000-0000-0000-0000-000000000000";

/** The store of the simulated domain services (their own schema, their own role). */
export class SimulatorStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.simulator);
  }

  getDevice(
    service: string,
    resourceId: string,
    step: string,
    tx?: Tx,
  ): Promise<Device | undefined> {
    return this.reading(tx, async (q) => {
      const [row] = await q
        .select()
        .from(devices)
        .where(
          and(
            eq(devices.service, service),
            eq(devices.resourceId, resourceId),
            eq(devices.step, step),
          ),
        );
      return row;
    });
  }

  /** Creates or replaces what a device holds and records the side effect, in the caller's transaction. */
  apply(
    tx: Tx,
    input: {
      service: string;
      resourceId: string;
      step: string;
      generation: number;
      state: Record<string, unknown>;
      operation: string;
      messageId: string;
      appliedIn?: string | undefined;
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .insert(devices)
        .values({
          service: input.service,
          resourceId: input.resourceId,
          step: input.step,
          generation: input.generation,
          state: input.state,
        })
        .onConflictDoUpdate({
          target: [devices.service, devices.resourceId, devices.step],
          set: { generation: input.generation, state: input.state, updatedAt: sql`now()` },
        });
      await q.insert(effects).values({
        service: input.service,
        resourceId: input.resourceId,
        step: input.step,
        operation: input.operation,
        messageId: input.messageId,
        appliedIn: input.appliedIn ?? null,
      });
    });
  }

  /** Removes what a device holds and records the side effect. */
  remove(
    tx: Tx,
    input: {
      service: string;
      resourceId: string;
      step: string;
      messageId: string;
      appliedIn?: string | undefined;
    },
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .delete(devices)
        .where(
          and(
            eq(devices.service, input.service),
            eq(devices.resourceId, input.resourceId),
            eq(devices.step, input.step),
          ),
        );
      await q.insert(effects).values({
        service: input.service,
        resourceId: input.resourceId,
        step: input.step,
        messageId: input.messageId,
        operation: "delete",
        appliedIn: input.appliedIn ?? null,
      });
    });
  }

  /**
   * Changes fields of a device behind the platform's back (to demonstrate drift correction); the
   * fields not named keep their values.
   */
  drift(
    service: string,
    resourceId: string,
    step: string,
    state: Record<string, unknown>,
  ): Promise<boolean> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const rows = await q
          .update(devices)
          .set({
            state: sql`${devices.state} || ${JSON.stringify(state)}::jsonb`,
            updatedAt: sql`now()`,
          })
          .where(
            and(
              eq(devices.service, service),
              eq(devices.resourceId, resourceId),
              eq(devices.step, step),
            ),
          )
          .returning({ id: devices.resourceId });
        return rows.length > 0;
      }),
    );
  }

  /**
   * The fault injected for this resource and step, if any; a transient one is used up by one
   * failure. Runs in a transaction of its own: the failed attempt's rollback must not undo it.
   */
  takeFault(service: string, resourceId: string, step: string): Promise<Fault | undefined> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        // The most specific fault wins: this resource before every resource, one step before all.
        const [fault] = await q
          .select()
          .from(faults)
          .where(
            and(
              eq(faults.service, service),
              inArray(faults.resourceId, [resourceId, EVERY_RESOURCE]),
              sql`${faults.step} IN ('', ${step})`,
            ),
          )
          .orderBy(sql`${faults.resourceId} = ${EVERY_RESOURCE}`, sql`${faults.step} DESC`)
          .limit(1)
          .for("update");
        if (!fault) return undefined;
        if (fault.mode === "transient") {
          if ((fault.remaining ?? 0) <= 0) return undefined;
          await q
            .update(faults)
            .set({ remaining: sql`${faults.remaining} - 1` })
            .where(
              and(
                eq(faults.service, service),
                eq(faults.resourceId, fault.resourceId),
                eq(faults.step, fault.step),
              ),
            );
        }
        return fault;
      }),
    );
  }

  /**
   * Injects a fault: every operation on the resource (or one step of it) fails; with
   * {@link EVERY_RESOURCE} as the resource, every operation of the service does.
   */
  setFault(input: {
    service: string;
    resourceId: string;
    step?: string;
    mode: "permanent" | "transient";
    remaining?: number;
    message: string;
  }): Promise<void> {
    return this.db.transaction((tx) =>
      this.inTx(tx, async (q) => {
        const row = {
          service: input.service,
          resourceId: input.resourceId,
          step: input.step ?? "",
          mode: input.mode,
          remaining: input.mode === "transient" ? (input.remaining ?? 1) : null,
          message: input.message,
        };
        await q
          .insert(faults)
          .values(row)
          .onConflictDoUpdate({
            target: [faults.service, faults.resourceId, faults.step],
            set: { mode: row.mode, remaining: row.remaining, message: row.message },
          });
      }),
    );
  }

  /**
   * Clears the faults of a resource ({@link EVERY_RESOURCE}: the service-wide ones), of one
   * service when given; returns how many there were.
   */
  clearFaults(resourceId: string, service?: string): Promise<number> {
    return this.db.transaction((tx) =>
      this.inTx(
        tx,
        async (q) =>
          (
            await q
              .delete(faults)
              .where(
                and(
                  eq(faults.resourceId, resourceId),
                  service ? eq(faults.service, service) : undefined,
                ),
              )
              .returning()
          ).length,
      ),
    );
  }

  listFaults(): Promise<Fault[]> {
    return this.reading(undefined, (q) => q.select().from(faults).orderBy(asc(faults.createdAt)));
  }

  /** The side effects applied for a resource, oldest first. */
  effectsOf(resourceId: string): Promise<Effect[]> {
    return this.reading(undefined, (q) =>
      q.select().from(effects).where(eq(effects.resourceId, resourceId)).orderBy(asc(effects.id)),
    );
  }

  /** Message ids that caused more than one side effect (should be none). */
  async duplicateEffects(): Promise<{ messageId: string; count: number }[]> {
    return this.reading(undefined, (q) =>
      q
        .select({ messageId: effects.messageId, count: sql<number>`count(*)::int` })
        .from(effects)
        .groupBy(effects.messageId)
        .having(sql`count(*) > 1`),
    );
  }
}
