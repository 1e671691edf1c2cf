import { actorOf } from "../../auth/index.js";
import { demandOf, type Resource, type ResourceKind } from "../../contexts/inventory/index.js";
import type { Task } from "../../contexts/task/index.js";
import { inTransaction, type Tx } from "../../db/index.js";
import { type ListOptions, NotFoundError, type Page } from "../../kernel/index.js";
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

  /** A resource; a UUID path costs one query (the chain is checked on the row itself). */
  async getResource(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    ref: string,
  ): Promise<Resource> {
    const { scope, inventory } = this.#core;
    if (isUuid(refs.tenant) && isUuid(refs.project) && isUuid(refs.environment) && isUuid(ref)) {
      const tenantId = await scope.tenantId(ctx, refs.tenant);
      if (ctx.principal.project !== undefined)
        await scope.projectId(ctx, tenantId, refs.project, false);
      const resource = await inventory.getResource(tenantId, ref);
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
    const { inventory } = this.#core;
    if (isUuid(ref)) {
      const resource = await inventory.getResource(tenantId, ref);
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
  ): Promise<ResourceChange> {
    const { inventory, audit } = this.#core;
    const { tenantId, projectId, environment } = await this.#core.scope.path(ctx, refs);
    requireWrite(ctx, `create ${kind}s`);
    await this.#core.admission.resource(kind, input.spec, environment.datacenterId, "/body/spec");
    return inTransaction(this.#core.db, async (tx) => {
      await hooks?.begin(tx);
      const resource = await inventory.createResource(
        tx,
        {
          kind,
          tenantId,
          projectId,
          environmentId: environment.id,
          datacenterId: environment.datacenterId,
          name: input.name,
          labels: input.labels ?? {},
          spec: input.spec,
        },
        { charge: false },
      );
      const task = await this.#task(ctx, tx, resource, `${kind}.create`);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: resource.datacenterId,
          projectId,
          action: `${kind}.create`,
          resourceKind: kind,
          resourceId: resource.id,
          after: { name: resource.name, labels: resource.labels, spec: resource.spec },
        }),
      );
      const change = { resource, task };
      await hooks?.end(tx, change);
      // The quota charge last: its row locks order this tenant's concurrent requests, and are
      // held from here to the commit only.
      await inventory.quotas.charge(tx, tenantId, demandOf(kind, resource.spec, resource));
      return change;
    });
  }

  /** Changes a resource's spec or labels, with the task that applies it (optimistic on `version`). */
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
  ): Promise<ResourceChange> {
    const { inventory, audit } = this.#core;
    const current = await this.getResource(ctx, refs, kind, ref);
    requireWrite(ctx, `change ${kind}s`);
    if (patch.spec)
      await this.#core.admission.resource(kind, patch.spec, current.datacenterId, "/body/spec");
    return inTransaction(this.#core.db, async (tx) => {
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
    return this.#core.taskService.create(tx, {
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
    });
  }
}
