import { issuedAfterCreation, ForbiddenError } from "../../auth/index.js";
import { ANY_SCOPE } from "../../contexts/inventory/index.js";
import type { Environment, Project, Tenant } from "../../contexts/tenancy/index.js";
import { inTransaction } from "../../db/index.js";
import { InUseError, type ListOptions, type Page } from "../../kernel/index.js";
import type { FacadeCore } from "./core.js";
import {
  auditEntry,
  type CallContext,
  clean,
  requireOperator,
  requireWrite,
  type TxHooks,
} from "./scope.js";

/** What a tenant or project is created with. */
type TenancyInput = {
  name: string;
  displayName?: string | undefined;
  labels?: Record<string, string> | undefined;
};

/** What may change of a tenant or project (a type, not an interface: `clean` takes a record). */
type TenancyPatch = {
  displayName?: string | undefined;
  labels?: Record<string, string> | undefined;
};

/**
 * Tenants (operators create, change and delete them; a tenant reads itself), their projects and
 * the projects' environments, each change audited in its transaction.
 */
export class TenancyFacade {
  readonly #core: FacadeCore;

  constructor(core: FacadeCore) {
    this.#core = core;
  }

  // ---------------------------------------------------------------- tenants

  listTenants(ctx: CallContext, options: ListOptions): Promise<Page<Tenant>> {
    requireOperator(ctx, "list tenants");
    return this.#core.tenancy.listTenants(options);
  }

  async getTenant(ctx: CallContext, ref: string): Promise<Tenant> {
    return this.#core.tenancy.getTenant(await this.#core.scope.tenantId(ctx, ref));
  }

  createTenant(ctx: CallContext, input: TenancyInput, hooks?: TxHooks<Tenant>): Promise<Tenant> {
    requireOperator(ctx, "create tenants");
    const { tenancy, audit } = this.#core;
    return inTransaction(this.#core.db, async (tx) => {
      await hooks?.begin(tx);
      const tenant = await tenancy.createTenant(tx, {
        name: input.name,
        ...clean({ displayName: input.displayName, labels: input.labels }),
      });
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: tenant.id,
          datacenterId: "-",
          action: "tenant.create",
          resourceKind: "tenant",
          resourceId: tenant.id,
          after: { name: tenant.name, displayName: tenant.displayName, labels: tenant.labels },
        }),
      );
      await hooks?.end(tx, tenant);
      return tenant;
    });
  }

  async updateTenant(
    ctx: CallContext,
    ref: string,
    version: number,
    patch: TenancyPatch,
  ): Promise<Tenant> {
    requireOperator(ctx, "change tenants");
    const { tenancy, audit } = this.#core;
    const id = await this.#core.scope.tenantId(ctx, ref);
    return inTransaction(this.#core.db, async (tx) => {
      const before = await tenancy.getTenant(id, tx);
      const after = await tenancy.updateTenant(tx, id, version, clean(patch));
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: id,
          datacenterId: "-",
          action: "tenant.update",
          resourceKind: "tenant",
          resourceId: id,
          before: { displayName: before.displayName, labels: before.labels },
          after: { displayName: after.displayName, labels: after.labels },
        }),
      );
      return after;
    });
  }

  async deleteTenant(ctx: CallContext, ref: string, version: number): Promise<void> {
    requireOperator(ctx, "delete tenants");
    const { tenancy, inventory, audit, scope } = this.#core;
    const id = await scope.tenantId(ctx, ref);
    await inTransaction(this.#core.db, async (tx) => {
      await tenancy.deleteTenant(tx, id, version);
      await inventory.quotas.forgetTenant(tx, id);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: id,
          datacenterId: "-",
          action: "tenant.delete",
          resourceKind: "tenant",
          resourceId: id,
        }),
      );
    });
    scope.forgetTenant(id);
  }

  // ---------------------------------------------------------------- projects

  async listProjects(
    ctx: CallContext,
    tenantRef: string,
    options: ListOptions,
  ): Promise<Page<Project>> {
    const tenantId = await this.#core.scope.tenantId(ctx, tenantRef);
    const page = await this.#core.tenancy.listProjects(tenantId, options);
    const scope = ctx.principal.project;
    if (scope === undefined) return page;
    return {
      ...page,
      items: page.items.filter(
        (p) =>
          p.id === scope || (p.name === scope && issuedAfterCreation(ctx.principal, p.createdAt)),
      ),
    };
  }

  async getProject(ctx: CallContext, tenantRef: string, ref: string): Promise<Project> {
    const { scope, tenancy } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    return tenancy.getProject(tenantId, await scope.projectId(ctx, tenantId, ref));
  }

  async createProject(
    ctx: CallContext,
    tenantRef: string,
    input: TenancyInput,
    hooks?: TxHooks<Project>,
  ): Promise<Project> {
    const { tenancy, audit } = this.#core;
    const tenantId = await this.#core.scope.tenantId(ctx, tenantRef);
    requireWrite(ctx, "create projects");
    if (ctx.principal.project !== undefined)
      throw new ForbiddenError("a project-scoped token may not create projects");
    return inTransaction(this.#core.db, async (tx) => {
      await hooks?.begin(tx);
      const project = await tenancy.createProject(tx, {
        tenantId,
        name: input.name,
        ...clean({ displayName: input.displayName, labels: input.labels }),
      });
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          projectId: project.id,
          action: "project.create",
          resourceKind: "project",
          resourceId: project.id,
          after: { name: project.name, displayName: project.displayName, labels: project.labels },
        }),
      );
      await hooks?.end(tx, project);
      return project;
    });
  }

  async updateProject(
    ctx: CallContext,
    tenantRef: string,
    ref: string,
    version: number,
    patch: TenancyPatch,
  ): Promise<Project> {
    const { tenancy, audit, scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const id = await scope.projectId(ctx, tenantId, ref);
    requireWrite(ctx, "change projects");
    return inTransaction(this.#core.db, async (tx) => {
      const before = await tenancy.getProject(tenantId, id, tx);
      const after = await tenancy.updateProject(tx, tenantId, id, version, clean(patch));
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          projectId: id,
          action: "project.update",
          resourceKind: "project",
          resourceId: id,
          before: { displayName: before.displayName, labels: before.labels },
          after: { displayName: after.displayName, labels: after.labels },
        }),
      );
      return after;
    });
  }

  async deleteProject(
    ctx: CallContext,
    tenantRef: string,
    ref: string,
    version: number,
  ): Promise<void> {
    const { tenancy, audit, scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const id = await scope.projectId(ctx, tenantId, ref);
    requireWrite(ctx, "delete projects");
    await inTransaction(this.#core.db, async (tx) => {
      await tenancy.deleteProject(tx, tenantId, id, version);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          projectId: id,
          action: "project.delete",
          resourceKind: "project",
          resourceId: id,
        }),
      );
    });
    scope.forgetProject(id);
  }

  // ---------------------------------------------------------------- environments

  async listEnvironments(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    options: ListOptions,
  ): Promise<Page<Environment>> {
    const { scope, tenancy } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectId = await scope.projectId(ctx, tenantId, projectRef);
    return tenancy.listEnvironments(tenantId, projectId, options);
  }

  async getEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    ref: string,
  ): Promise<Environment> {
    const { scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectId = await scope.projectId(ctx, tenantId, projectRef);
    return scope.environment(ctx, tenantId, projectId, ref);
  }

  async createEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    input: { name: string; datacenter: string; labels?: Record<string, string> | undefined },
    hooks?: TxHooks<Environment>,
  ): Promise<Environment> {
    const { tenancy, inventory, audit, scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectId = await scope.projectId(ctx, tenantId, projectRef);
    requireWrite(ctx, "create environments");
    await this.#core.admission.datacenter(input.datacenter, "/body/datacenter");
    return inTransaction(this.#core.db, async (tx) => {
      await hooks?.begin(tx);
      const env = await tenancy.createEnvironment(tx, {
        tenantId,
        projectId,
        name: input.name,
        datacenterId: input.datacenter,
        labels: input.labels ?? {},
      });
      await inventory.quotas.charge(tx, tenantId, [
        { quota: "environments", scope: ANY_SCOPE, amount: 1 },
      ]);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: env.datacenterId,
          projectId,
          action: "environment.create",
          resourceKind: "environment",
          resourceId: env.id,
          after: { name: env.name, datacenter: env.datacenterId, labels: env.labels },
        }),
      );
      await hooks?.end(tx, env);
      return env;
    });
  }

  async updateEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    ref: string,
    version: number,
    patch: { labels: Record<string, string> },
  ): Promise<Environment> {
    const { tenancy, audit, scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectId = await scope.projectId(ctx, tenantId, projectRef);
    const env = await scope.environment(ctx, tenantId, projectId, ref);
    requireWrite(ctx, "change environments");
    return inTransaction(this.#core.db, async (tx) => {
      const after = await tenancy.updateEnvironment(tx, tenantId, env.id, version, patch);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: env.datacenterId,
          projectId,
          action: "environment.update",
          resourceKind: "environment",
          resourceId: env.id,
          before: { labels: env.labels },
          after: { labels: after.labels },
        }),
      );
      return after;
    });
  }

  async deleteEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    ref: string,
    version: number,
  ): Promise<void> {
    const { tenancy, inventory, audit, scope } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectId = await scope.projectId(ctx, tenantId, projectRef);
    const env = await scope.environment(ctx, tenantId, projectId, ref);
    requireWrite(ctx, "delete environments");
    const inside = await inventory.countInEnvironment(tenantId, env.id);
    if (inside > 0)
      throw new InUseError("environment", env.name, [`${inside} resources; delete them first`]);
    await inTransaction(this.#core.db, async (tx) => {
      await tenancy.deleteEnvironment(tx, tenantId, env.id, version);
      await inventory.quotas.charge(tx, tenantId, [
        { quota: "environments", scope: ANY_SCOPE, amount: -1 },
      ]);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: env.datacenterId,
          projectId,
          action: "environment.delete",
          resourceKind: "environment",
          resourceId: env.id,
        }),
      );
    });
    scope.forgetEnvironment(env.id);
  }
}
