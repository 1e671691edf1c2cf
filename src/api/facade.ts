import {
  type AuditEntry,
  type AuditFilter,
  type AuditRecord,
  AuditStore,
} from "../contexts/audit/index.js";
import {
  ANY_SCOPE,
  demandOf,
  InventoryStore,
  type QuotaName,
  type QuotaView,
  type Resource,
  type ResourceKind,
} from "../contexts/inventory/index.js";
import { PlatformStore } from "../contexts/platform/index.js";
import {
  type DeadLetter,
  DeadLetterStore,
  type DeadLetterState,
  type Backup,
  BackupStore,
  IdempotencyStore,
  InboxStore,
  LeaseStore,
  OutboxStore,
} from "../contexts/runtime/index.js";
import { type Task, type TaskEvent, TaskStore } from "../contexts/task/index.js";
import {
  type Environment,
  type Project,
  type Tenant,
  TenancyStore,
} from "../contexts/tenancy/index.js";
import { type Database, inTransaction, type Tx } from "../db/index.js";
import {
  actorOf,
  canWrite,
  ForbiddenError,
  issuedAfterCreation,
  type Principal,
} from "../auth/index.js";
import {
  type IdGenerator,
  InUseError,
  isTerminal,
  type ListOptions,
  NotFoundError,
  type Page,
  type TaskState,
} from "../kernel/index.js";
import {
  BackupService,
  type DatabaseStatus,
  type BackupContext,
  databaseStatus,
  type RunningBackup,
} from "../maintenance/index.js";
import { DeadLetterService, TaskService } from "../workflow/index.js";
import { Admission } from "./admission.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isUuid = (ref: string): boolean => UUID.test(ref);

/** Who calls and in which workflow. */
export interface CallContext {
  readonly principal: Principal;
  readonly correlationId: string;
  /** W3C trace context of the request, carried into the tasks and messages it causes. */
  readonly traceparent?: string;
}

/**
 * Hooks into the transaction of a change: `begin` runs first (claiming an idempotency key),
 * `end` last with the result (storing the response). Both commit with the change or not at all.
 */
export interface TxHooks<R> {
  begin(tx: Tx): Promise<void>;
  end(tx: Tx, result: R): Promise<void>;
}

/** Ids of the path a tenant resource lives under. */
export interface ResourcePath {
  readonly tenant: string;
  readonly project: string;
  readonly environment: string;
}

/** A change to a resource, and the task that carries it out. */
export interface ResourceChange {
  readonly resource: Resource;
  readonly task: Task;
}

/** The stores and services the facade composes. */
export interface FacadeDeps {
  readonly db: Database;
  readonly newId: IdGenerator;
  readonly now: () => Date;
  /** How long admission uses one read of the platform (tests that change it set 0). */
  readonly admissionTtlMs?: number;
}

/** What never changes about a tenant or project: its name and when it was created. */
interface Named {
  readonly name: string;
  readonly createdAt: Date;
}

const named = (row: Named): Named => ({ name: row.name, createdAt: row.createdAt });

/**
 * Bounded LRU of immutable facts (an id's name and creation time): ids are never reused and
 * names never change, so nothing here can go stale except a deletion, which the owning call
 * evicts.
 */
class NameCache {
  readonly #map = new Map<string, Named>();
  constructor(readonly max = 10_000) {}
  get(id: string): Named | undefined {
    const name = this.#map.get(id);
    if (name !== undefined) {
      this.#map.delete(id);
      this.#map.set(id, name);
    }
    return name;
  }
  set(id: string, name: Named): void {
    this.#map.set(id, name);
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }
  delete(id: string): void {
    this.#map.delete(id);
  }
}

/**
 * The API facade context (seed 003): presents the public resource model, enforces who may do
 * what, and composes the tenancy, inventory, task, audit and runtime contexts — a change, its
 * task, its audit record and its outbox messages in one transaction. It owns no tables.
 *
 * Everything outside the caller's tenant (or project, for a project-scoped token) answers
 * {@link NotFoundError}, exactly as if it did not exist.
 */
export class ApiFacade {
  readonly db: Database;
  readonly tenancy: TenancyStore;
  readonly inventory: InventoryStore;
  readonly tasks: TaskStore;
  readonly audit: AuditStore;
  readonly idempotency: IdempotencyStore;
  readonly taskService: TaskService;
  readonly deadLetters: DeadLetterStore;
  readonly #deadLetterService: DeadLetterService;
  readonly #backups: BackupService;
  readonly #backupStore: BackupStore;
  readonly #admission: Admission;
  readonly #now: () => Date;
  /**
   * Tenant names resolved for rate-limit keys (`claimedTenantId` with `maxAgeMs`), misses too:
   * a few seconds stale at most, and never used to decide what a request may see or do.
   */
  readonly #claims = new Map<
    string,
    { tenant: Named | undefined; id: string | undefined; until: number }
  >();
  readonly #tenantNames = new NameCache();
  readonly #projectNames = new NameCache();

  constructor(deps: FacadeDeps) {
    this.db = deps.db;
    this.tenancy = new TenancyStore(deps.db, deps.newId);
    this.inventory = new InventoryStore(deps.db, deps.newId);
    this.#now = deps.now;
    this.#admission = new Admission({
      inventory: this.inventory,
      platform: new PlatformStore(deps.db),
      now: deps.now,
      ...(deps.admissionTtlMs !== undefined ? { ttlMs: deps.admissionTtlMs } : {}),
    });
    this.tasks = new TaskStore(deps.db, deps.newId);
    this.audit = new AuditStore(deps.db);
    this.idempotency = new IdempotencyStore(deps.db);
    const outbox = new OutboxStore(deps.db);
    this.taskService = new TaskService({
      tasks: this.tasks,
      outbox,
      newId: deps.newId,
      now: deps.now,
    });
    this.deadLetters = new DeadLetterStore(deps.db);
    this.#deadLetterService = new DeadLetterService({
      db: deps.db,
      deadLetters: this.deadLetters,
      inbox: new InboxStore(deps.db),
      outbox,
      audit: this.audit,
      tasks: this.taskService,
      newId: deps.newId,
      now: deps.now,
    });
    this.#backups = new BackupService({ db: deps.db, newId: deps.newId, now: deps.now });
    this.#backupStore = new BackupStore(deps.db);
  }

  // ---------------------------------------------------------------- scope

  async #tenantName(id: string): Promise<Named> {
    const cached = this.#tenantNames.get(id);
    if (cached !== undefined) return cached;
    const tenant = named(await this.tenancy.getTenant(id));
    this.#tenantNames.set(id, tenant);
    return tenant;
  }

  async #projectName(tenantId: string, id: string): Promise<Named> {
    const cached = this.#projectNames.get(id);
    if (cached !== undefined) return cached;
    const project = named(await this.tenancy.getProject(tenantId, id));
    this.#projectNames.set(id, project);
    return project;
  }

  /**
   * Whether tenant `id` is the one the principal's token names: by id, or by name when it
   * existed at the token's `iat` — a tenant created later under the same name (the old one
   * deleted) is not the token's, so a token never inherits its newcomer.
   */
  async #isClaimedTenant(principal: Principal, id: string): Promise<boolean> {
    const claim = principal.tenant;
    if (claim === undefined) return false;
    if (claim === id) return true;
    if (isUuid(claim)) return false;
    const tenant = await this.#tenantName(id).catch(() => undefined);
    return (
      tenant !== undefined &&
      tenant.name === claim &&
      issuedAfterCreation(principal, tenant.createdAt)
    );
  }

  /** Whether project `id` is within the principal's project scope (by id, or by name as above). */
  async #inProjectScope(principal: Principal, tenantId: string, id: string): Promise<boolean> {
    const scope = principal.project;
    if (scope === undefined || scope === id) return true;
    if (isUuid(scope)) return false;
    const project = await this.#projectName(tenantId, id).catch(() => undefined);
    return (
      project !== undefined &&
      project.name === scope &&
      issuedAfterCreation(principal, project.createdAt)
    );
  }

  /**
   * The id of the tenant a tenant role's token means, when that tenant exists for the token (see
   * {@link ApiFacade.tenantId}); undefined for operators and for a token whose tenant is gone or
   * younger than the token. One bucket of the rate limiter, and one scope of Idempotency-Keys,
   * per tenant, whether its tokens name it by id or by name.
   */
  async claimedTenantId(
    principal: Principal,
    options: { maxAgeMs?: number } = {},
  ): Promise<string | undefined> {
    const claim = principal.tenant;
    if (principal.role === "operator" || claim === undefined) return undefined;
    // Ids are never reused: an id claim means that tenant, or nothing at all.
    if (isUuid(claim)) return claim;
    const maxAgeMs = options.maxAgeMs ?? 0;
    const now = this.#now().getTime();
    let tenant = maxAgeMs > 0 ? this.#claims.get(claim) : undefined;
    if (!tenant || tenant.until <= now) {
      const row = await this.tenancy.findTenantByName(claim);
      tenant = { tenant: row ? named(row) : undefined, id: row?.id, until: now + maxAgeMs };
      if (row) this.#tenantNames.set(row.id, named(row));
      if (maxAgeMs > 0) {
        this.#claims.delete(claim);
        this.#claims.set(claim, tenant);
        if (this.#claims.size > 10_000)
          this.#claims.delete(this.#claims.keys().next().value as string);
      }
    }
    if (!tenant.tenant || !issuedAfterCreation(principal, tenant.tenant.createdAt))
      return undefined;
    return tenant.id;
  }

  /**
   * The id of the tenant `ref` (id or name) names, if the caller may see it.
   *
   * @throws {NotFoundError} when it does not exist or belongs to someone else.
   */
  async tenantId(ctx: CallContext, ref: string): Promise<string> {
    let id: string;
    if (isUuid(ref)) {
      id = ref;
    } else {
      const tenant = await this.tenancy.findTenantByName(ref);
      if (!tenant) throw new NotFoundError("tenant", ref);
      this.#tenantNames.set(tenant.id, named(tenant));
      id = tenant.id;
    }
    // A tenant-scoped caller is compared with its claim before anything is read.
    if (ctx.principal.role !== "operator" && !(await this.#isClaimedTenant(ctx.principal, id))) {
      throw new NotFoundError("tenant", ref);
    }
    await this.#tenantName(id).catch((err: unknown) => {
      throw err instanceof NotFoundError ? new NotFoundError("tenant", ref) : err;
    });
    return id;
  }

  /**
   * The id of project `ref` of the tenant, if the caller may see it.
   *
   * @throws {NotFoundError}
   */
  async projectId(
    ctx: CallContext,
    tenantId: string,
    ref: string,
    mustExist = true,
  ): Promise<string> {
    let id: string;
    if (isUuid(ref)) {
      id = ref;
      if (mustExist) await this.#projectName(tenantId, id);
    } else {
      const found = await this.#findProjectByName(tenantId, ref);
      id = found.id;
    }
    if (!(await this.#inProjectScope(ctx.principal, tenantId, id))) {
      throw new NotFoundError("project", ref);
    }
    return id;
  }

  async #findProjectByName(tenantId: string, name: string): Promise<Project> {
    const match = await this.tenancy.findProjectByName(tenantId, name);
    if (!match) throw new NotFoundError("project", name);
    this.#projectNames.set(match.id, named(match));
    return match;
  }

  /**
   * The environment `ref` of the project, if the caller may see it.
   *
   * @throws {NotFoundError}
   */
  async environment(
    ctx: CallContext,
    tenantId: string,
    projectId: string,
    ref: string,
  ): Promise<Environment> {
    if (isUuid(ref)) {
      const env = await this.tenancy.getEnvironment(tenantId, ref);
      if (env.projectId !== projectId) throw new NotFoundError("environment", ref);
      return env;
    }
    const match = await this.tenancy.findEnvironmentByName(tenantId, projectId, ref);
    if (!match) throw new NotFoundError("environment", ref);
    return match;
  }

  /** Resolves a resource path, checking the caller may see every step. */
  async path(
    ctx: CallContext,
    refs: ResourcePath,
  ): Promise<{ tenantId: string; projectId: string; environment: Environment }> {
    const tenantId = await this.tenantId(ctx, refs.tenant);
    const projectId = await this.projectId(ctx, tenantId, refs.project);
    const environment = await this.environment(ctx, tenantId, projectId, refs.environment);
    return { tenantId, projectId, environment };
  }

  // ---------------------------------------------------------------- permissions

  #requireOperator(ctx: CallContext, what: string): void {
    if (ctx.principal.role !== "operator") throw new ForbiddenError(`only operators may ${what}`);
  }

  #requireWrite(ctx: CallContext, what: string): void {
    if (!canWrite(ctx.principal))
      throw new ForbiddenError(`a ${ctx.principal.role} token may not ${what}`);
  }

  #auditEntry(ctx: CallContext, entry: Omit<AuditEntry, "actor" | "correlationId">): AuditEntry {
    return { ...entry, actor: actorOf(ctx.principal), correlationId: ctx.correlationId };
  }

  // ---------------------------------------------------------------- tenants

  listTenants(ctx: CallContext, options: ListOptions): Promise<Page<Tenant>> {
    this.#requireOperator(ctx, "list tenants");
    return this.tenancy.listTenants(options);
  }

  async getTenant(ctx: CallContext, ref: string): Promise<Tenant> {
    return this.tenancy.getTenant(await this.tenantId(ctx, ref));
  }

  createTenant(
    ctx: CallContext,
    input: {
      name: string;
      displayName?: string | undefined;
      labels?: Record<string, string> | undefined;
    },
    hooks?: TxHooks<Tenant>,
  ): Promise<Tenant> {
    this.#requireOperator(ctx, "create tenants");
    return inTransaction(this.db, async (tx) => {
      await hooks?.begin(tx);
      const tenant = await this.tenancy.createTenant(tx, {
        name: input.name,
        ...clean({ displayName: input.displayName, labels: input.labels }),
      });
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    patch: { displayName?: string | undefined; labels?: Record<string, string> | undefined },
  ): Promise<Tenant> {
    this.#requireOperator(ctx, "change tenants");
    const id = await this.tenantId(ctx, ref);
    return inTransaction(this.db, async (tx) => {
      const before = await this.tenancy.getTenant(id, tx);
      const after = await this.tenancy.updateTenant(tx, id, version, clean(patch));
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    this.#requireOperator(ctx, "delete tenants");
    const id = await this.tenantId(ctx, ref);
    await inTransaction(this.db, async (tx) => {
      await this.tenancy.deleteTenant(tx, id, version);
      await this.inventory.quotas.forgetTenant(tx, id);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
          tenantId: id,
          datacenterId: "-",
          action: "tenant.delete",
          resourceKind: "tenant",
          resourceId: id,
        }),
      );
    });
    this.#tenantNames.delete(id);
    for (const [claim, entry] of this.#claims) if (entry.id === id) this.#claims.delete(claim);
  }

  // ---------------------------------------------------------------- projects

  async listProjects(
    ctx: CallContext,
    tenantRef: string,
    options: ListOptions,
  ): Promise<Page<Project>> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const page = await this.tenancy.listProjects(tenantId, options);
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
    const tenantId = await this.tenantId(ctx, tenantRef);
    return this.tenancy.getProject(tenantId, await this.projectId(ctx, tenantId, ref));
  }

  async createProject(
    ctx: CallContext,
    tenantRef: string,
    input: {
      name: string;
      displayName?: string | undefined;
      labels?: Record<string, string> | undefined;
    },
    hooks?: TxHooks<Project>,
  ): Promise<Project> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    this.#requireWrite(ctx, "create projects");
    if (ctx.principal.project !== undefined)
      throw new ForbiddenError("a project-scoped token may not create projects");
    return inTransaction(this.db, async (tx) => {
      await hooks?.begin(tx);
      const project = await this.tenancy.createProject(tx, {
        tenantId,
        name: input.name,
        ...clean({ displayName: input.displayName, labels: input.labels }),
      });
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    patch: { displayName?: string | undefined; labels?: Record<string, string> | undefined },
  ): Promise<Project> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const id = await this.projectId(ctx, tenantId, ref);
    this.#requireWrite(ctx, "change projects");
    return inTransaction(this.db, async (tx) => {
      const before = await this.tenancy.getProject(tenantId, id, tx);
      const after = await this.tenancy.updateProject(tx, tenantId, id, version, clean(patch));
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    const tenantId = await this.tenantId(ctx, tenantRef);
    const id = await this.projectId(ctx, tenantId, ref);
    this.#requireWrite(ctx, "delete projects");
    await inTransaction(this.db, async (tx) => {
      await this.tenancy.deleteProject(tx, tenantId, id, version);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          projectId: id,
          action: "project.delete",
          resourceKind: "project",
          resourceId: id,
        }),
      );
    });
    this.#projectNames.delete(id);
  }

  // ---------------------------------------------------------------- environments

  async listEnvironments(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    options: ListOptions,
  ): Promise<Page<Environment>> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const projectId = await this.projectId(ctx, tenantId, projectRef);
    return this.tenancy.listEnvironments(tenantId, projectId, options);
  }

  async getEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    ref: string,
  ): Promise<Environment> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const projectId = await this.projectId(ctx, tenantId, projectRef);
    return this.environment(ctx, tenantId, projectId, ref);
  }

  async createEnvironment(
    ctx: CallContext,
    tenantRef: string,
    projectRef: string,
    input: { name: string; datacenter: string; labels?: Record<string, string> | undefined },
    hooks?: TxHooks<Environment>,
  ): Promise<Environment> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const projectId = await this.projectId(ctx, tenantId, projectRef);
    this.#requireWrite(ctx, "create environments");
    await this.#admission.datacenter(input.datacenter, "/body/datacenter");
    return inTransaction(this.db, async (tx) => {
      await hooks?.begin(tx);
      const env = await this.tenancy.createEnvironment(tx, {
        tenantId,
        projectId,
        name: input.name,
        datacenterId: input.datacenter,
        labels: input.labels ?? {},
      });
      await this.inventory.quotas.charge(tx, tenantId, [
        { quota: "environments", scope: ANY_SCOPE, amount: 1 },
      ]);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    const tenantId = await this.tenantId(ctx, tenantRef);
    const projectId = await this.projectId(ctx, tenantId, projectRef);
    const env = await this.environment(ctx, tenantId, projectId, ref);
    this.#requireWrite(ctx, "change environments");
    return inTransaction(this.db, async (tx) => {
      const after = await this.tenancy.updateEnvironment(tx, tenantId, env.id, version, patch);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    const tenantId = await this.tenantId(ctx, tenantRef);
    const projectId = await this.projectId(ctx, tenantId, projectRef);
    const env = await this.environment(ctx, tenantId, projectId, ref);
    this.#requireWrite(ctx, "delete environments");
    const inside = await this.inventory.countInEnvironment(tenantId, env.id);
    if (inside > 0)
      throw new InUseError("environment", env.name, [`${inside} resources; delete them first`]);
    await inTransaction(this.db, async (tx) => {
      await this.tenancy.deleteEnvironment(tx, tenantId, env.id, version);
      await this.inventory.quotas.charge(tx, tenantId, [
        { quota: "environments", scope: ANY_SCOPE, amount: -1 },
      ]);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
          tenantId,
          datacenterId: env.datacenterId,
          projectId,
          action: "environment.delete",
          resourceKind: "environment",
          resourceId: env.id,
        }),
      );
    });
  }

  // ---------------------------------------------------------------- resources

  async listResources(
    ctx: CallContext,
    refs: ResourcePath,
    kind: ResourceKind,
    options: ListOptions,
  ): Promise<Page<Resource>> {
    const { tenantId, projectId, environment } = await this.path(ctx, refs);
    return this.inventory.listResources(
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
    if (isUuid(refs.tenant) && isUuid(refs.project) && isUuid(refs.environment) && isUuid(ref)) {
      const tenantId = await this.tenantId(ctx, refs.tenant);
      if (ctx.principal.project !== undefined)
        await this.projectId(ctx, tenantId, refs.project, false);
      const resource = await this.inventory.getResource(tenantId, ref);
      if (
        resource.kind !== kind ||
        resource.projectId !== refs.project ||
        resource.environmentId !== refs.environment
      ) {
        throw new NotFoundError(kind, ref);
      }
      return resource;
    }
    const { tenantId, projectId, environment } = await this.path(ctx, refs);
    return this.#findResource(tenantId, projectId, environment.id, kind, ref);
  }

  async #findResource(
    tenantId: string,
    projectId: string,
    environmentId: string,
    kind: ResourceKind,
    ref: string,
  ): Promise<Resource> {
    if (isUuid(ref)) {
      const resource = await this.inventory.getResource(tenantId, ref);
      if (
        resource.kind !== kind ||
        resource.projectId !== projectId ||
        resource.environmentId !== environmentId
      ) {
        throw new NotFoundError(kind, ref);
      }
      return resource;
    }
    return this.inventory.getResourceByName({ tenantId, projectId, environmentId, kind }, ref);
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
    const { tenantId, projectId, environment } = await this.path(ctx, refs);
    this.#requireWrite(ctx, `create ${kind}s`);
    await this.#admission.resource(kind, input.spec, environment.datacenterId, "/body/spec");
    return inTransaction(this.db, async (tx) => {
      await hooks?.begin(tx);
      const resource = await this.inventory.createResource(
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
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
      await this.inventory.quotas.charge(tx, tenantId, demandOf(kind, resource.spec, resource));
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
    const current = await this.getResource(ctx, refs, kind, ref);
    this.#requireWrite(ctx, `change ${kind}s`);
    if (patch.spec)
      await this.#admission.resource(kind, patch.spec, current.datacenterId, "/body/spec");
    return inTransaction(this.db, async (tx) => {
      const resource = await this.inventory.updateResourceSpec(
        tx,
        current.tenantId,
        current.id,
        version,
        clean(patch),
      );
      const task = await this.#task(ctx, tx, resource, `${kind}.update`);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    const current = await this.getResource(ctx, refs, kind, ref);
    this.#requireWrite(ctx, `delete ${kind}s`);
    return inTransaction(this.db, async (tx) => {
      const resource = await this.inventory.requestResourceDeletion(
        tx,
        current.tenantId,
        current.id,
        version,
      );
      const task = await this.#task(ctx, tx, resource, `${kind}.delete`);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
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
    return this.taskService.create(tx, {
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

  // ---------------------------------------------------------------- quotas

  /** A tenant's quotas: the limits in force and what it holds (the tenant's own roles too). */
  async getQuotas(ctx: CallContext, tenantRef: string): Promise<QuotaView & { tenantId: string }> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const view = await this.inventory.quotas.view(tenantId);
    const scope = ctx.principal.project;
    if (scope === undefined) return { tenantId, ...view };
    // A project-scoped token sees the per-environment quotas of its own project's environments
    // only: another project's environment ids are not its to see (found by the access sweep).
    const projectId = await this.projectId(ctx, tenantId, scope);
    const own = new Set<string>();
    let after: string | undefined;
    do {
      const page = await this.tenancy.listEnvironments(tenantId, projectId, { limit: 500, after });
      for (const env of page.items) own.add(env.id);
      after = page.next;
    } while (after !== undefined);
    const visible = (s: string): boolean => !isUuid(s) || own.has(s);
    return {
      tenantId,
      limits: view.limits.filter((l) => visible(l.scope)),
      usage: view.usage.filter((u) => visible(u.scope)),
    };
  }

  /**
   * Replaces a tenant's overrides of one quota (operators), audited: `limits` by scope, `*` for
   * every scope without one of its own; empty to go back to the platform's default. A limit below
   * what the tenant holds takes nothing away; it refuses new requests until usage drops.
   */
  async setQuota(
    ctx: CallContext,
    tenantRef: string,
    quota: QuotaName,
    limits: Readonly<Record<string, number>>,
  ): Promise<QuotaView & { tenantId: string }> {
    this.#requireOperator(ctx, "change quotas");
    const tenantId = await this.tenantId(ctx, tenantRef);
    await inTransaction(this.db, async (tx) => {
      const before = await this.inventory.quotas.view(tenantId, tx);
      await this.inventory.quotas.setOverrides(tx, tenantId, quota, limits);
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          action: "quota.update",
          resourceKind: "quota",
          resourceId: quota,
          before: {
            limits: Object.fromEntries(
              before.limits
                .filter((l) => l.quota === quota && l.source === "tenant")
                .map((l) => [l.scope, l.limit]),
            ),
          },
          after: { limits },
        }),
      );
    });
    return { tenantId, ...(await this.inventory.quotas.view(tenantId)) };
  }

  // ---------------------------------------------------------------- tasks

  async listTasks(
    ctx: CallContext,
    tenantRef: string,
    filter: { state?: TaskState | undefined; resourceId?: string | undefined },
    options: ListOptions,
  ): Promise<Page<Task>> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const page = await this.tasks.list({ tenantId, ...clean(filter) }, options);
    const scope = ctx.principal.project;
    if (scope === undefined) return page;
    const projectId = await this.projectId(ctx, tenantId, scope);
    return { ...page, items: page.items.filter((t) => t.projectId === projectId) };
  }

  /** A task of the tenant with its history. @throws {NotFoundError} */
  async getTask(
    ctx: CallContext,
    tenantRef: string,
    id: string,
  ): Promise<{ task: Task; history: TaskEvent[] }> {
    const tenantId = await this.tenantId(ctx, tenantRef);
    const task = await this.tasks.get(id, { tenantId });
    if (ctx.principal.project !== undefined) {
      const projectId = await this.projectId(ctx, tenantId, ctx.principal.project);
      if (task.projectId !== projectId) throw new NotFoundError("task", id);
    }
    return { task, history: await this.tasks.history(id) };
  }

  /**
   * Cancels a task that has not ended: the platform stops working towards its generation.
   *
   * @throws {InvalidTransitionError} when it already ended.
   */
  async cancelTask(ctx: CallContext, tenantRef: string, id: string, reason: string): Promise<Task> {
    const { task } = await this.getTask(ctx, tenantRef, id);
    this.#requireWrite(ctx, "cancel tasks");
    return inTransaction(this.db, async (tx) => {
      const cancelled = await this.taskService.transition(
        tx,
        task.id,
        "cancelled",
        { actor: actorOf(ctx.principal), message: reason },
        { correlationId: ctx.correlationId },
      );
      await this.audit.record(
        tx,
        this.#auditEntry(ctx, {
          tenantId: task.tenantId,
          datacenterId: task.datacenterId,
          projectId: task.projectId,
          action: "task.cancel",
          resourceKind: "task",
          resourceId: task.id,
          before: { state: task.state },
          after: { state: cancelled.state, reason },
        }),
      );
      return cancelled;
    });
  }

  /** True once the task can no longer change. */
  isFinished(task: Task): boolean {
    return isTerminal(task.state);
  }

  // ---------------------------------------------------------------- audit

  /**
   * Audit records: a tenant's own, or (operators, without a tenant) the whole platform's. A
   * project-scoped token sees the records of its project only — not those of other projects, nor
   * the tenant's own (`tenant.*`, `quota.*`), which belong to no project.
   */
  async listAudit(
    ctx: CallContext,
    tenantRef: string | undefined,
    filter: Omit<AuditFilter, "tenantId" | "projectId">,
    options: { limit: number; after?: string | undefined },
  ): Promise<Page<AuditRecord>> {
    if (tenantRef === undefined) {
      this.#requireOperator(ctx, "read the platform's audit trail");
      return this.audit.list(filter, options);
    }
    const tenantId = await this.tenantId(ctx, tenantRef);
    const scope = ctx.principal.project;
    if (scope === undefined) return this.audit.list({ ...filter, tenantId }, options);
    const projectId = await this.projectId(ctx, tenantId, scope);
    return this.audit.list({ ...filter, tenantId, projectId }, options);
  }

  // ---------------------------------------------------------------- dead letters (operators)

  /** Dead letters, oldest first, by state and service. */
  /** Shard leases, the platform controllers' leader lease and the replicas (operators). */
  listLeases(ctx: CallContext): ReturnType<LeaseStore["overview"]> {
    this.#requireOperator(ctx, "read leases");
    return new LeaseStore(this.db).overview();
  }

  /** The system of record's health and its catalogue of backups and restores (`dv db status`). */
  databaseStatus(ctx: CallContext): Promise<DatabaseStatus> {
    this.#requireOperator(ctx, "read the database status");
    return databaseStatus(this.db);
  }

  /**
   * Starts a backup of the whole database or one context's schema, streamed to the caller;
   * recorded and audited.
   *
   * @throws {BackupError} when the dump tool is missing or refuses the server.
   */
  startBackup(ctx: CallContext, context?: BackupContext): Promise<RunningBackup> {
    this.#requireOperator(ctx, "take backups");
    return this.#backups.start({
      actor: actorOf(ctx.principal),
      correlationId: ctx.correlationId,
      context,
    });
  }

  listBackups(ctx: CallContext, limit: number): Promise<Backup[]> {
    this.#requireOperator(ctx, "read backups");
    return this.#backupStore.list(limit);
  }

  /** @throws {NotFoundError} */
  getBackup(ctx: CallContext, id: string): Promise<Backup> {
    this.#requireOperator(ctx, "read backups");
    if (!isUuid(id)) throw new NotFoundError("backup", id);
    return this.#backupStore.get(id);
  }

  listDeadLetters(
    ctx: CallContext,
    filter: { state?: DeadLetterState | undefined; service?: string | undefined },
    options: { limit: number; after?: string | undefined },
  ): Promise<Page<DeadLetter>> {
    this.#requireOperator(ctx, "read dead letters");
    return this.deadLetters.list(clean(filter), options);
  }

  /** @throws {NotFoundError} */
  getDeadLetter(ctx: CallContext, id: string): Promise<DeadLetter> {
    this.#requireOperator(ctx, "read dead letters");
    return this.deadLetters.get(id);
  }

  /**
   * Sends a dead letter's message again (new id, caused by the dead letter), puts its task back
   * to `queued`, and audits it.
   *
   * @throws {NotFoundError} @throws {InvalidTransitionError} when it is not open.
   */
  async replayDeadLetter(ctx: CallContext, id: string, reason: string): Promise<DeadLetter> {
    this.#requireOperator(ctx, "replay dead letters");
    const { messageId } = await this.#deadLetterService.replay(
      id,
      actorOf(ctx.principal),
      reason,
      ctx.correlationId,
      ctx.traceparent,
    );
    return { ...(await this.deadLetters.get(id)), replayMessageId: messageId };
  }

  /** Sets a dead letter aside for good, audited. @throws {InvalidTransitionError} when not open. */
  async discardDeadLetter(ctx: CallContext, id: string, reason: string): Promise<DeadLetter> {
    this.#requireOperator(ctx, "discard dead letters");
    await this.#deadLetterService.discard(id, actorOf(ctx.principal), reason, ctx.correlationId);
    return this.deadLetters.get(id);
  }
}

/** Drops `undefined` fields (exactOptionalPropertyTypes: absent, not undefined). */
function clean<T extends Record<string, unknown>>(
  value: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
