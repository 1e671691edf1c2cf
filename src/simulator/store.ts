import { and, asc, eq, sql } from "drizzle-orm";
import { anyUuid, ContextRole, ContextStore, type Database, rowsOf, type Tx } from "../db/index.js";
import { devices, effects, faults } from "./schema.js";

export type Device = typeof devices.$inferSelect;
export type Effect = typeof effects.$inferSelect;
export type Fault = typeof faults.$inferSelect;

/** The resource id of a fault that hits every resource of its service (the nil UUID). */
export const EVERY_RESOURCE = "00000000-0000-0000-0000-000000000000";

/** What a provision or update makes a device hold, and the ledger line that records it. */
export interface DeviceEffect {
  readonly service: string;
  readonly resourceId: string;
  readonly step: string;
  readonly generation: number;
  readonly state: Record<string, unknown>;
  readonly operation: string;
  readonly messageId: string;
  readonly appliedIn?: string | undefined;
}

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
  apply(tx: Tx, input: DeviceEffect): Promise<void> {
    return this.applyMany(tx, [input]);
  }

  /**
   * What the devices of `keys` hold, in one statement: by `service/resourceId/step`, the ones
   * that hold nothing missing.
   */
  async getDevices(
    keys: readonly { service: string; resourceId: string; step: string }[],
    tx?: Tx,
  ): Promise<Map<string, Device>> {
    if (keys.length === 0) return new Map();
    const wanted = JSON.stringify(
      keys.map((k) => ({ service: k.service, resource_id: k.resourceId, step: k.step })),
    );
    return this.reading(tx, async (q) => {
      const rows = await q
        .select()
        .from(devices)
        .where(
          sql`${devices.resourceId} = ${anyUuid(keys.map((k) => k.resourceId))}
          AND (${devices.service}, ${devices.resourceId}, ${devices.step}) IN (
            SELECT k.service, k.resource_id, k.step
              FROM jsonb_to_recordset(${wanted}::jsonb) AS k(service text, resource_id uuid, step text))`,
        );
      return new Map(rows.map((d) => [`${d.service}/${d.resourceId}/${d.step}`, d]));
    });
  }

  /**
   * {@link apply} of each of `inputs`, in their order, in one statement: a device named twice
   * holds what the last one says; the ledger has a line for each.
   */
  applyMany(tx: Tx, inputs: readonly DeviceEffect[]): Promise<void> {
    if (inputs.length === 0) return Promise.resolve();
    const rows = JSON.stringify(
      inputs.map((i) => ({
        service: i.service,
        resource_id: i.resourceId,
        step: i.step,
        generation: i.generation,
        state: i.state,
        operation: i.operation,
        message_id: i.messageId,
        applied_in: i.appliedIn ?? null,
      })),
    );
    return this.inTx(tx, async (q) => {
      await q.execute(sql`
        WITH input AS (
          SELECT d.*, x.n FROM jsonb_array_elements(${rows}::jsonb) WITH ORDINALITY AS x(r, n),
               LATERAL jsonb_to_record(x.r) AS d(service text, resource_id uuid, step text,
                 generation bigint, state jsonb, operation text, message_id text, applied_in text)
        ), device AS (
          INSERT INTO ${devices} (service, resource_id, step, generation, state)
          SELECT DISTINCT ON (service, resource_id, step) service, resource_id, step, generation, state
            FROM input ORDER BY service, resource_id, step, n DESC
          ON CONFLICT (service, resource_id, step) DO UPDATE
            SET generation = EXCLUDED.generation, state = EXCLUDED.state, updated_at = now()
        )
        INSERT INTO ${effects} (service, resource_id, step, operation, message_id, applied_in)
        SELECT service, resource_id, step, operation, message_id, applied_in FROM input ORDER BY n`);
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
  /**
   * Which of `wanted` a fault may hit, in one statement for all of them (every command's prepare
   * asks, and there is usually no fault): the answer is the set of `service/resourceId/step` that
   * {@link takeFault} should be asked about.
   */
  async faultsAmong(
    wanted: readonly { service: string; resourceId: string; step: string }[],
  ): Promise<Set<string>> {
    const hit = new Set<string>();
    if (wanted.length === 0) return hit;
    const services = `{${[...new Set(wanted.map((w) => w.service))].join(",")}}`;
    const ids = `{${[...new Set(wanted.map((w) => w.resourceId)), EVERY_RESOURCE].join(",")}}`;
    const rows = await this.db.read(this.role, (q) =>
      q
        .select({ service: faults.service, resourceId: faults.resourceId, step: faults.step })
        .from(faults)
        .where(
          and(
            sql`${faults.service} = ANY(${services}::text[])`,
            sql`${faults.resourceId} = ANY(${ids}::uuid[])`,
          ),
        ),
    );
    for (const w of wanted)
      if (
        rows.some(
          (f) =>
            f.service === w.service &&
            (f.resourceId === w.resourceId || f.resourceId === EVERY_RESOURCE) &&
            (f.step === "" || f.step === w.step),
        )
      )
        hit.add(`${w.service}/${w.resourceId}/${w.step}`);
    return hit;
  }

  takeFault(service: string, resourceId: string, step: string): Promise<Fault | undefined> {
    // One statement, its own transaction (every command's prepare asks, and there is usually no
    // fault): the fault row is locked, a transient one used up, and returned as it was.
    return this.db.read(this.role, async (q) => {
      const result = await q.execute(sql`
        WITH f AS (
          SELECT * FROM ${faults}
           WHERE service = ${service} AND resource_id IN (${resourceId}::uuid, ${EVERY_RESOURCE}::uuid)
             AND step IN ('', ${step})
           ORDER BY resource_id = ${EVERY_RESOURCE}::uuid, step DESC
           LIMIT 1
             FOR UPDATE
        ), used AS (
          UPDATE ${faults} u SET remaining = u.remaining - 1
            FROM f
           WHERE u.service = f.service AND u.resource_id = f.resource_id AND u.step = f.step
             AND f.mode = 'transient' AND coalesce(f.remaining, 0) > 0
          RETURNING u.service
        )
        SELECT f.service, f.resource_id, f.mode, f.remaining, f.step, f.message, f.created_at,
               (SELECT count(*) FROM used) AS used
          FROM f`);
      const [row] = rowsOf<{
        service: string;
        resource_id: string;
        mode: string;
        remaining: number | null;
        step: string;
        message: string;
        created_at: Date | string;
        used: string | number;
      }>(result);
      if (!row) return undefined;
      // A transient fault with nothing left fails nothing more.
      if (row.mode === "transient" && Number(row.used) === 0) return undefined;
      return {
        service: row.service,
        resourceId: row.resource_id,
        mode: row.mode,
        remaining: row.remaining,
        step: row.step,
        message: row.message,
        createdAt: new Date(row.created_at),
      };
    });
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
