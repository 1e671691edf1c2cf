import { and, asc, count, eq, gt, inArray, isNotNull, isNull, sql } from "drizzle-orm";
import {
  type Database,
  labelCondition,
  mapUniqueViolation,
  NamedRowRead,
  type Orm,
  rowsOf,
  type Tx,
} from "../../db/index.js";
import {
  AlreadyExistsError,
  InUseError,
  type ListOptions,
  NotFoundError,
  type Page,
  toPage,
  VersionConflictError,
} from "../../kernel/index.js";
import { demandDelta, demandOf, QuotaStore } from "./quotas.js";
import { resources } from "./schema.js";

import { AllocationStore } from "./allocations.js";
import {
  type Allocations,
  holdsNothing,
  INTENT_CHANNEL,
  type Resource,
  type ResourceKind,
  SHARD_SQL,
} from "./model.js";

/**
 * The read of one tenant resource by id (the API's hottest read) as a named statement:
 * PostgreSQL parses and plans it once per connection, and on node-postgres it is sent without
 * drizzle's layers around a query (see {@link NamedRowRead}).
 */
const getResourceRead = new NamedRowRead<Resource>("inventory_get_resource", resources, (q) =>
  q
    .select()
    .from(resources)
    .where(
      and(
        eq(resources.id, sql.placeholder("id")),
        eq(resources.tenantId, sql.placeholder("tenantId")),
      ),
    ),
);

/** A tenant resource as the API records it. */
export interface NewResource {
  readonly kind: ResourceKind;
  readonly tenantId: string;
  readonly projectId: string;
  readonly environmentId: string;
  readonly datacenterId: string;
  readonly name: string;
  readonly labels?: Record<string, string>;
  readonly spec: Record<string, unknown>;
}

/**
 * The inventory context's store: tenant resources (what tenants asked for: spec, status, the
 * quota they are charged), on top of the allocations they hold (allocations.ts) and the physical
 * inventory those come from (topology.ts). One store, one role, three files by concern.
 */
export class InventoryStore extends AllocationStore {
  /** Tenant quotas: charged when a resource is recorded or changed, refunded when it is gone. */
  readonly quotas: QuotaStore;

  constructor(db: Database, newId: () => string) {
    super(db, newId);
    this.quotas = new QuotaStore(db);
  }

  /**
   * What a resync of `shards` (of `shardCount`, by {@link SHARD_SQL}) must look at, in one query:
   * the keys of resources that need a pass, and how many are converged — the generation observed,
   * `Ready`, every step done, not being deleted, and for `observe.kinds` an observation sent within
   * `observe.everyMs` of `now`. Converged resources are counted, not listed.
   */
  resyncDue(
    shards: readonly number[],
    shardCount: number,
    observe: { readonly kinds: readonly string[]; readonly everyMs: number },
    now: Date,
  ): Promise<{ keys: string[]; converged: number }> {
    return this.reading(undefined, async (q) => {
      const since = new Date(now.getTime() - observe.everyMs).toISOString();
      const result = await q.execute(sql`
        WITH r AS (
          SELECT kind, id,
                 deletion_requested_at IS NULL
             AND observed_generation = generation
             AND status @> '{"conditions":[{"type":"Ready","status":"True"}]}'
             AND NOT jsonb_path_exists(status, '$.steps.* ? (@.state != "done")')
             AND (kind <> ALL(${`{${observe.kinds.join(",")}}`}::text[]) OR EXISTS (
                   SELECT 1 FROM jsonb_each(status->'steps') s
                    WHERE s.value->>'action' = 'observe'
                      AND (s.value->>'dispatchedAt')::timestamptz >= ${since}::timestamptz))
                 AS converged
            FROM ${resources}
           WHERE ${sql.raw(SHARD_SQL("id"))} % ${shardCount} = ANY(${`{${shards.join(",")}}`}::int[])
        )
        SELECT kind || ':' || id AS key, NULL::bigint AS converged FROM r WHERE NOT converged
        UNION ALL
        SELECT NULL, count(*) FROM r WHERE converged`);
      const keys: string[] = [];
      let converged = 0;
      for (const row of rowsOf<{ key: string | null; converged: string | number | null }>(result)) {
        if (row.key === null) converged = Number(row.converged ?? 0);
        else keys.push(row.key);
      }
      return { keys, converged };
    });
  }

  /**
   * Records tenant resources, each as {@link createResource} with `charge: false` (the caller
   * charges their quotas), in two statements whatever their number: the rows, and one
   * announcement each. Answered in the order of `inputs`.
   *
   * @throws the first violation of any of them (a name taken): nothing is recorded then, and the
   *   caller learns which by trying them one by one.
   */
  createResources(tx: Tx, inputs: readonly NewResource[]): Promise<Resource[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    return this.inTx(tx, async (q) => {
      const rows = (await q
        .insert(resources)
        .values(inputs.map((input) => ({ id: this.newId(), ...input, labels: input.labels ?? {} })))
        .returning()) as Resource[];
      await announceAll(q, rows);
      // RETURNING answers in the order of the rows, which PostgreSQL does not promise: by name.
      const byPlace = new Map(rows.map((r) => [`${r.environmentId}/${r.kind}/${r.name}`, r]));
      return inputs.map((input) => {
        const row = byPlace.get(`${input.environmentId}/${input.kind}/${input.name}`);
        if (!row) throw new Error(`resource ${input.name} was not recorded`);
        return row;
      });
    });
  }

  /** Announces a resource so its reconciler looks at it now (a task of it was cancelled, …). */
  touch(tx: Tx, resource: { kind: string; id: string }): Promise<void> {
    return this.inTx(tx, (q) => announce(q, resource));
  }

  /**
   * Records a tenant's resource and charges what its spec asks for to the tenant's quotas.
   *
   * @param options.charge false: the caller charges `demandOf` the resource itself, later in the
   *   same transaction (as late as it can, so the quota rows' locks are held briefly).
   * @throws {AlreadyExistsError} when the environment already has a resource of that kind and name.
   * @throws {QuotaExceededError} when the tenant's quotas do not allow it.
   */
  createResource(
    tx: Tx,
    input: NewResource,
    options: { charge?: boolean } = {},
  ): Promise<Resource> {
    return this.inTx(tx, (q) =>
      mapUniqueViolation(
        async () => {
          const [row] = await q
            .insert(resources)
            .values({ id: this.newId(), ...input, labels: input.labels ?? {} })
            .returning();
          const resource = row as Resource;
          if (options.charge !== false) {
            await this.quotas.charge(tx, input.tenantId, demandOf(input.kind, input.spec, input));
          }
          await announce(q, resource);
          return resource;
        },
        ["resources_environment_kind_name"],
        (_c, cause) =>
          new AlreadyExistsError(input.kind, input.name, "this environment", { cause }),
      ),
    );
  }

  /** A tenant's resource. @throws {NotFoundError} also when it belongs to another tenant. */
  async getResource(tenantId: string, id: string, tx?: Tx): Promise<Resource> {
    const [row] = await this.reading(tx, (q) => getResourceRead.execute(q, { id, tenantId }));
    if (!row) throw new NotFoundError("resource", id);
    return row;
  }

  /**
   * A tenant's resource by its name in an environment: one indexed lookup
   * (`resources_environment_kind_name`).
   *
   * @throws {NotFoundError}
   */
  async getResourceByName(
    where: { tenantId: string; projectId: string; environmentId: string; kind: ResourceKind },
    name: string,
    tx?: Tx,
  ): Promise<Resource> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(resources)
        .where(
          and(
            eq(resources.environmentId, where.environmentId),
            eq(resources.kind, where.kind),
            eq(resources.name, name),
            eq(resources.tenantId, where.tenantId),
            eq(resources.projectId, where.projectId),
          ),
        ),
    );
    if (!row) throw new NotFoundError(where.kind, name);
    return row as Resource;
  }

  /** Any tenant's resource, for reconcilers. @throws {NotFoundError} */
  async getResourceById(id: string, tx?: Tx): Promise<Resource> {
    const [row] = await this.reading(tx, (q) =>
      q.select().from(resources).where(eq(resources.id, id)),
    );
    if (!row) throw new NotFoundError("resource", id);
    return row as Resource;
  }

  async listResources(
    filter: { tenantId: string; kind: ResourceKind; projectId?: string; environmentId?: string },
    options: ListOptions,
    tx?: Tx,
  ): Promise<Page<Resource>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(resources)
        .where(
          and(
            eq(resources.tenantId, filter.tenantId),
            eq(resources.kind, filter.kind),
            filter.projectId ? eq(resources.projectId, filter.projectId) : undefined,
            filter.environmentId ? eq(resources.environmentId, filter.environmentId) : undefined,
            options.after ? gt(resources.id, options.after) : undefined,
            labelCondition(resources.labels, options.labels ?? []),
          ),
        )
        .orderBy(asc(resources.id))
        .limit(options.limit + 1),
    );
    return toPage(rows as Resource[], options.limit);
  }

  /** How many resources live in an environment (it cannot be deleted while any do). */
  async countInEnvironment(tenantId: string, environmentId: string, tx?: Tx): Promise<number> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select({ n: count() })
        .from(resources)
        .where(and(eq(resources.tenantId, tenantId), eq(resources.environmentId, environmentId))),
    );
    return Number(row?.n ?? 0);
  }

  /**
   * Changes what the tenant asked for; `generation` moves when the spec does, and the tenant's
   * quotas are charged (or refunded) the difference.
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   * @throws {QuotaExceededError} when the new spec asks for more than the quotas allow.
   */
  updateResourceSpec(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
    patch: { spec?: Record<string, unknown>; labels?: Record<string, string> },
  ): Promise<Resource> {
    return this.inTx(tx, async (q) => {
      // The spec being replaced, locked, for the quota difference (only when the spec changes).
      const [before] = patch.spec
        ? await q
            .select({ spec: resources.spec, kind: resources.kind })
            .from(resources)
            .where(and(eq(resources.id, id), eq(resources.tenantId, tenantId)))
            .for("update")
        : [];
      const [row] = await q
        .update(resources)
        .set({
          ...(patch.spec ? { spec: patch.spec, generation: sql`${resources.generation} + 1` } : {}),
          ...(patch.labels ? { labels: patch.labels } : {}),
          version: sql`${resources.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(resources.id, id),
            eq(resources.tenantId, tenantId),
            eq(resources.version, expectedVersion),
            isNull(resources.deletionRequestedAt),
          ),
        )
        .returning();
      if (row) {
        if (before && patch.spec) {
          await this.quotas.charge(
            tx,
            tenantId,
            demandDelta(demandOf(before.kind, before.spec, row), demandOf(row.kind, row.spec, row)),
          );
        }
        await announce(q, row);
        return row as Resource;
      }
      throw await this.#resourceMiss(q, tenantId, id, expectedVersion);
    });
  }

  /**
   * Marks a resource for deletion; reconcilers tear it down, release what it holds, then
   * {@link removeResource} it.
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   */
  requestResourceDeletion(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
  ): Promise<Resource> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(resources)
        .set({
          deletionRequestedAt: sql`coalesce(${resources.deletionRequestedAt}, now())`,
          generation: sql`${resources.generation} + 1`,
          version: sql`${resources.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(
          and(
            eq(resources.id, id),
            eq(resources.tenantId, tenantId),
            eq(resources.version, expectedVersion),
          ),
        )
        .returning();
      if (row) {
        await announce(q, row);
        return row as Resource;
      }
      throw await this.#resourceMiss(q, tenantId, id, expectedVersion);
    });
  }

  /**
   * The resources of `ids` that exist, locked (`FOR NO KEY UPDATE`, in id order) until `tx`
   * ends: a reconcile pass over many resources reads them once and writes their status with
   * {@link writeStatuses}, and a tenant's change waits for the pass to commit.
   */
  lockResources(tx: Tx, ids: readonly string[]): Promise<Resource[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.inTx(tx, async (q) => {
      const rows = await q
        .select()
        .from(resources)
        .where(inArray(resources.id, [...ids]))
        .orderBy(asc(resources.id))
        .for("no key update");
      return rows as Resource[];
    });
  }

  /**
   * Records the observed state of many resources in one statement, each only if still at the
   * version given. Returns the ids whose version had moved (nothing written for those).
   */
  writeStatuses(
    tx: Tx,
    writes: readonly {
      id: string;
      status: Record<string, unknown>;
      observedGeneration: number;
      version: number;
    }[],
  ): Promise<Set<string>> {
    if (writes.length === 0) return Promise.resolve(new Set());
    const rows = JSON.stringify(
      writes.map((w) => ({
        id: w.id,
        status: w.status,
        observed: w.observedGeneration,
        version: w.version,
      })),
    );
    return this.inTx(tx, async (q) => {
      const result = await q.execute(sql`
        UPDATE ${resources} r
           SET status = w.status, observed_generation = w.observed,
               version = r.version + 1, updated_at = now()
          FROM jsonb_to_recordset(${rows}::jsonb) AS w(id uuid, status jsonb, observed bigint, version bigint)
         WHERE r.id = w.id AND r.version = w.version
        RETURNING r.id`);
      const written = new Set(rowsOf<{ id: string }>(result).map((r) => r.id));
      return new Set(writes.map((w) => w.id).filter((id) => !written.has(id)));
    });
  }

  /**
   * Deletes a resource whose deletion was requested and which holds nothing any more.
   *
   * @throws {InUseError} while it still holds allocations.
   */
  removeResource(tx: Tx, id: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      const held = (await this.allocationsIn(q, [id])).get(id) as Allocations;
      if (!holdsNothing(held)) {
        throw new InUseError("resource", id, [
          ...held.vlans.map((v) => `VLAN ${v.vlanId}`),
          ...held.prefixes.map((p) => `prefix ${p.prefix}`),
          ...held.servers.map((s) => `server ${s.name}`),
          ...held.capacity.map((c) => `${c.amount} ${c.resource}`),
        ]);
      }
      const [removed] = await q
        .delete(resources)
        .where(and(eq(resources.id, id), isNotNull(resources.deletionRequestedAt)))
        .returning();
      if (removed) {
        const refund = demandOf(removed.kind, removed.spec, removed).map((d) => ({
          ...d,
          amount: -d.amount,
        }));
        await this.quotas.charge(tx, removed.tenantId, refund);
      }
    });
  }

  async #resourceMiss(
    q: Orm,
    tenantId: string,
    id: string,
    expectedVersion: number,
  ): Promise<Error> {
    const [current] = await q
      .select({ version: resources.version, deleting: resources.deletionRequestedAt })
      .from(resources)
      .where(and(eq(resources.id, id), eq(resources.tenantId, tenantId)));
    if (!current) return new NotFoundError("resource", id);
    if (current.deleting && current.version === expectedVersion) {
      return new InUseError("resource", id, ["its own deletion, already under way"]);
    }
    return new VersionConflictError("resource", id, expectedVersion, current.version);
  }
}

/** Tells reconcilers (LISTEN dv_intent) that a resource's intent changed; sent on commit. */
/** Announces each of `list`: one statement. */
async function announceAll(q: Orm, list: readonly { kind: string; id: string }[]): Promise<void> {
  const keys = list.map((r) => `${r.kind}:${r.id}`);
  await q.execute(
    sql`SELECT pg_notify(${INTENT_CHANNEL}, key) FROM unnest(${`{${keys.join(",")}}`}::text[]) AS key`,
  );
}

async function announce(q: Orm, resource: { kind: string; id: string }): Promise<void> {
  await q.execute(sql`SELECT pg_notify(${INTENT_CHANNEL}, ${`${resource.kind}:${resource.id}`})`);
}
