import { actorOf } from "../../auth/index.js";
import type { AuditEntry } from "../../contexts/audit/index.js";
import {
  type Demand,
  demandOf,
  type NewResource,
  type Resource,
  type ResourceKind,
} from "../../contexts/inventory/index.js";
import type { NewTask, Task } from "../../contexts/task/index.js";
import { inTransaction, isOutage, type Tx } from "../../db/index.js";
import {
  GroupCommit,
  type ListOptions,
  NotFoundError,
  type Page,
  type Settled,
} from "../../kernel/index.js";
import type { FacadeCore } from "./core.js";
import {
  auditEntry,
  type CallContext,
  clean,
  isUuid,
  requireWrite,
  type ResourcePath,
  type TxHooks,
} from "./scope.js";

/** Creates written in one transaction at most (what queued while the last batch was written). */
const CREATE_BATCH = 64;

/** A create, admitted and placed, waiting to be written. */
interface PendingCreate {
  readonly ctx: CallContext;
  readonly resource: NewResource;
}

/** `demands` with one entry per quota and scope, their amounts summed (one row each to charge). */
function sumDemands(demands: readonly Demand[]): Demand[] {
  const sums = new Map<string, Demand>();
  for (const d of demands) {
    const key = `${d.quota}\u0000${d.scope}`;
    const seen = sums.get(key);
    sums.set(key, seen ? { ...d, amount: seen.amount + d.amount } : d);
  }
  return [...sums.values()];
}

/** Thrown inside a dry run's transaction to undo it, carrying what it would have written. */
class DryRunUndo extends Error {
  override readonly name = "DryRunUndo";
  constructor(readonly change: ResourceChange) {
    super("a dry run, undone");
  }
}

/**
 * Runs `write` in a transaction and undoes it (`dryRun`): every check a real write meets ran —
 * names, versions, quotas, references — and nothing was kept. Resolves with what it would have
 * written.
 */
async function rehearse(
  db: FacadeCore["db"],
  write: (tx: Tx) => Promise<ResourceChange>,
): Promise<ResourceChange> {
  try {
    await inTransaction(db, async (tx) => {
      throw new DryRunUndo(await write(tx));
    });
  } catch (err) {
    if (err instanceof DryRunUndo) return err.change;
    throw err;
  }
  throw new Error("a dry run's transaction committed");
}

/** A change to a resource, and the task that carries it out. */
export interface ResourceChange {
  readonly resource: Resource;
  readonly task: Task;
}

/**
 * Networks, servers, clusters and buckets inside an environment: reads, and every create, change
 * and delete recorded with the task that carries it out, its audit record and the quota charge,
 * in one transaction. The reconcilers take it from there.
 */
export class ResourceFacade {
  readonly #core: FacadeCore;

  constructor(core: FacadeCore) {
    this.#core = core;
  }

  async listResources(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    options: ListOptions,
  ): Promise<Page<Resource>> {
    const { tenantId, projectId, environment } = await this.#core.scope.path(ctx, refs);
    return this.#core.inventory.listResources(
      { tenantId, kind, projectId, environmentId: environment.id },
      options,
    );
  }

  /**
   * A resource; a UUID path costs at most one query (the chain is checked on the row itself),
   * none while the row is kept unchanged in `resourceReads`.
   */
  async getResource(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    ref: string,
  ): Promise<Resource> {
    const { scope, resourceReads } = this.#core;
    if (isUuid(refs.tenant) && isUuid(refs.project) && isUuid(refs.environment) && isUuid(ref)) {
      const tenantId = await scope.tenantId(ctx, refs.tenant);
      if (ctx.principal.project !== undefined)
        await scope.projectId(ctx, tenantId, refs.project, false);
      const resource = await resourceReads.get(tenantId, ref);
      if (
        resource.kind !== kind ||
        resource.projectId !== refs.project ||
        resource.environmentId !== refs.environment
      ) {
        throw new NotFoundError(kind, ref);
      }
      return resource;
    }
    const { tenantId, projectId, environment } = await scope.path(ctx, refs);
    return this.#findResource(tenantId, projectId, environment.id, kind, ref);
  }

  async #findResource(
    tenantId: string,
    projectId: string,
    environmentId: string,
    kind: ResourceKind,
    ref: string,
  ): Promise<Resource> {
    const { inventory, resourceReads } = this.#core;
    if (isUuid(ref)) {
      const resource = await resourceReads.get(tenantId, ref);
      if (
        resource.kind !== kind ||
        resource.projectId !== projectId ||
        resource.environmentId !== environmentId
      ) {
        throw new NotFoundError(kind, ref);
      }
      return resource;
    }
    return inventory.getResourceByName({ tenantId, projectId, environmentId, kind }, ref);
  }

  /**
   * Records a tenant's request for a new resource with the task that builds it, the audit record
   * and the task's `created` event, in one transaction. The reconcilers take it from there.
   *
   * Requests that arrive while another batch is being written are written together, in one
   * transaction of the same statements whatever their number (see {@link #createBatch}); a
   * request with an Idempotency-Key (its `hooks`) is written on its own.
   */
  async createResource(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    input: {
      name: string;
      labels?: Record<string, string> | undefined;
      spec: Record<string, unknown>;
    },
    hooks?: TxHooks<ResourceChange>,
    options: { dryRun?: boolean } = {},
  ): Promise<ResourceChange> {
    const { tenantId, projectId, environment } = await this.#core.scope.path(ctx, refs);
    requireWrite(ctx, `create ${kind}s`);
    await this.#core.admission.resource(kind, input.spec, environment.datacenterId, "/body/spec");
    const create: PendingCreate = {
      ctx,
      resource: {
        kind,
        tenantId,
        projectId,
        environmentId: environment.id,
        datacenterId: environment.datacenterId,
        name: input.name,
        labels: input.labels ?? {},
        spec: input.spec,
      },
    };
    if (options.dryRun) return this.#createOne(create, undefined, true);
    return hooks ? this.#createOne(create, hooks) : this.#creates.submit(create);
  }

  readonly #creates = new GroupCommit<PendingCreate, ResourceChange>(
    (batch) => this.#createBatch(batch),
    CREATE_BATCH,
  );

  /**
   * Writes the creates of `batch` together: their resources, tasks with their events, audit
   * records and quota charges (one per tenant, the batch's demands summed), each kind of row in
   * one statement. If any of them is refused (a name taken, a quota exceeded) the transaction
   * rolls back and each is written on its own, so that each gets its own answer and a refusal is
   * never a batch-mate's — unless the database itself is down: then each alone would fail alike,
   * and every create of the batch gets the outage's answer at once.
   */
  async #createBatch(batch: PendingCreate[]): Promise<Settled<ResourceChange>[]> {
    const alone = (item: PendingCreate): Promise<Settled<ResourceChange>> =>
      this.#createOne(item).then(
        (value) => ({ ok: true, value }),
        (error: unknown) => ({ ok: false, error }),
      );
    if (batch.length === 1) return [await alone(batch[0] as PendingCreate)];
    const { inventory, audit, taskService } = this.#core;
    try {
      const changes = await inTransaction(this.#core.db, async (tx) => {
        const resources = await inventory.createResources(
          tx,
          batch.map((item) => item.resource),
        );
        const tasks = await taskService.createMany(
          tx,
          resources.map((resource, i) => this.#newTask(batch[i]?.ctx as CallContext, resource)),
        );
        await audit.recordMany(
          tx,
          resources.map((resource, i) =>
            this.#createdEntry(batch[i]?.ctx as CallContext, resource),
          ),
        );
        // The quota charges last, one per tenant: their row locks are held to the commit only.
        const demands = new Map<string, Demand[]>();
        for (const resource of resources) {
          const list = demands.get(resource.tenantId) ?? [];
          list.push(...demandOf(resource.kind, resource.spec, resource));
          demands.set(resource.tenantId, list);
        }
        // Tenants in one order everywhere, so two batches never wait for each other's rows.
        for (const tenantId of [...demands.keys()].sort())
          await inventory.quotas.charge(tx, tenantId, sumDemands(demands.get(tenantId) ?? []));
        const taskOf = new Map(tasks.map((task) => [task.resourceId, task]));
        return resources.map((resource) => ({
          resource,
          task: taskOf.get(resource.id) as Task,
        }));
      });
      return changes.map((value) => ({ ok: true, value }));
    } catch (error) {
      if (await isOutage(this.#core.db, error)) return batch.map(() => ({ ok: false, error }));
      return Promise.all(batch.map(alone));
    }
  }

  /**
   * One create in a transaction of its own, with the Idempotency-Key's `hooks` when given; undone
   * at its end for a `dryRun`.
   */
  #createOne(
    item: PendingCreate,
    hooks?: TxHooks<ResourceChange>,
    dryRun = false,
  ): Promise<ResourceChange> {
    const { inventory, audit } = this.#core;
    return (dryRun ? rehearse : inTransaction)(this.#core.db, async (tx) => {
      await hooks?.begin(tx);
      const resource = await inventory.createResource(tx, item.resource, { charge: false });
      const task = await this.#core.taskService.create(tx, this.#newTask(item.ctx, resource));
      await audit.record(tx, this.#createdEntry(item.ctx, resource));
      const change = { resource, task };
      await hooks?.end(tx, change);
      // The quota charge last: its row locks order this tenant's concurrent requests, and are
      // held from here to the commit only.
      await inventory.quotas.charge(
        tx,
        resource.tenantId,
        demandOf(item.resource.kind, resource.spec, resource),
      );
      return change;
    });
  }

  #createdEntry(ctx: CallContext, resource: Resource): AuditEntry {
    return auditEntry(ctx, {
      tenantId: resource.tenantId,
      datacenterId: resource.datacenterId,
      projectId: resource.projectId,
      action: `${resource.kind}.create`,
      resourceKind: resource.kind,
      resourceId: resource.id,
      after: { name: resource.name, labels: resource.labels, spec: resource.spec },
    });
  }

  /**
   * Changes a resource's spec or labels, with the task that applies it (optimistic on `version`).
   * A `dryRun` meets every check and keeps nothing.
   */
  async updateResource(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    ref: string,
    version: number,
    patch: {
      labels?: Record<string, string> | undefined;
      spec?: Record<string, unknown> | undefined;
    },
    options: { dryRun?: boolean } = {},
  ): Promise<ResourceChange> {
    const { inventory, audit } = this.#core;
    const current = await this.getResource(ctx, refs, kind, ref);
    requireWrite(ctx, `change ${kind}s`);
    if (patch.spec)
      await this.#core.admission.resource(kind, patch.spec, current.datacenterId, "/body/spec");
    return (options.dryRun ? rehearse : inTransaction)(this.#core.db, async (tx) => {
      const resource = await inventory.updateResourceSpec(
        tx,
        current.tenantId,
        current.id,
        version,
        clean(patch),
      );
      const task = await this.#task(ctx, tx, resource, `${kind}.update`);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: current.tenantId,
          datacenterId: resource.datacenterId,
          projectId: current.projectId,
          action: `${kind}.update`,
          resourceKind: kind,
          resourceId: resource.id,
          before: { labels: current.labels, spec: current.spec },
          after: { labels: resource.labels, spec: resource.spec },
        }),
      );
      return { resource, task };
    });
  }

  /** Asks for a resource to be torn down, with the task that does it. */
  async deleteResource(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    ref: string,
    version: number,
  ): Promise<ResourceChange> {
    const { inventory, audit } = this.#core;
    const current = await this.getResource(ctx, refs, kind, ref);
    requireWrite(ctx, `delete ${kind}s`);
    return inTransaction(this.#core.db, async (tx) => {
      const resource = await inventory.requestResourceDeletion(
        tx,
        current.tenantId,
        current.id,
        version,
      );
      const task = await this.#task(ctx, tx, resource, `${kind}.delete`);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: current.tenantId,
          datacenterId: resource.datacenterId,
          projectId: current.projectId,
          action: `${kind}.delete`,
          resourceKind: kind,
          resourceId: resource.id,
          before: { name: current.name, spec: current.spec },
        }),
      );
      return { resource, task };
    });
  }

  #task(ctx: CallContext, tx: Tx, resource: Resource, operation: string): Promise<Task> {
    return this.#core.taskService.create(tx, this.#newTask(ctx, resource, operation));
  }

  /** The task that carries out `operation` (by default the resource's creation). */
  #newTask(ctx: CallContext, resource: Resource, operation = `${resource.kind}.create`): NewTask {
    return {
      operation,
      resourceKind: resource.kind,
      resourceId: resource.id,
      resourceGeneration: resource.generation,
      tenantId: resource.tenantId,
      projectId: resource.projectId,
      environmentId: resource.environmentId,
      datacenterId: resource.datacenterId,
      actor: actorOf(ctx.principal),
      correlationId: ctx.correlationId,
      traceparent: ctx.traceparent ?? null,
    };
  }
}
