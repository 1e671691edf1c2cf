import { AuditStore } from "../contexts/audit/index.js";
import { InventoryStore, ResourceCache } from "../contexts/inventory/index.js";
import { PlatformStore } from "../contexts/platform/index.js";
import {
  DeadLetterStore,
  IdempotencyStore,
  InboxStore,
  OutboxStore,
} from "../contexts/runtime/index.js";
import { TaskStore } from "../contexts/task/index.js";
import { TenancyStore } from "../contexts/tenancy/index.js";
import type { Database } from "../db/index.js";
import type { IdGenerator } from "../kernel/index.js";
import { DeadLetterService, TaskService } from "../workflow/index.js";
import { Admission } from "./admission.js";
import { AuditFacade } from "./facade/audit.js";
import { CatalogFacade } from "./facade/catalog.js";
import type { FacadeCore } from "./facade/core.js";
import { DeadLetterFacade } from "./facade/dead-letters.js";
import { OperationsFacade } from "./facade/operations.js";
import { QuotaFacade } from "./facade/quotas.js";
import { ResourceFacade } from "./facade/resources.js";
import { Scope } from "./facade/scope.js";
import { TaskFacade } from "./facade/tasks.js";
import { TenancyFacade } from "./facade/tenancy.js";

export type { CallContext, ResourcePath, TxHooks } from "./facade/scope.js";
export type { ResourceChange } from "./facade/resources.js";
export type { CatalogEntry, CatalogKind } from "./facade/catalog.js";

/** The stores and services the facade composes. */
export interface FacadeDeps {
  readonly db: Database;
  readonly newId: IdGenerator;
  readonly now: () => Date;
  /** How long admission uses one read of the platform (tests that change it set 0). */
  readonly admissionTtlMs?: number;
}

/**
 * The API facade context (seed 003): presents the public resource model, enforces who may do
 * what, and composes the tenancy, inventory, task, audit and runtime contexts — a change, its
 * task, its audit record and its outbox messages in one transaction. It owns no tables.
 *
 * Everything outside the caller's tenant (or project, for a project-scoped token) answers
 * `NotFoundError`, exactly as if it did not exist ({@link Scope}).
 *
 * One part per concern, in `facade/`: `scope.ts` (who may see what), `tenancy.ts` (tenants,
 * projects, environments), `resources.ts` (networks, servers, clusters, buckets), `quotas.ts`,
 * `tasks.ts`, `audit.ts`, `catalog.ts` (the platform objects tenants may name),
 * `dead-letters.ts` and `operations.ts` (leases, database status, backups). This class only
 * builds them and lists their operations under one name.
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
  /** Resolves what a request names within its caller's token. */
  readonly scope: Scope;
  /** Resources read by id, kept until their change is announced (once {@link follow}ed). */
  readonly resourceReads: ResourceCache;
  readonly #tenancy: TenancyFacade;
  readonly #resources: ResourceFacade;
  readonly #quotas: QuotaFacade;
  readonly #tasks: TaskFacade;
  readonly #audit: AuditFacade;
  readonly #catalog: CatalogFacade;
  readonly #deadLetters: DeadLetterFacade;
  readonly #operations: OperationsFacade;

  constructor(deps: FacadeDeps) {
    this.db = deps.db;
    this.tenancy = new TenancyStore(deps.db, deps.newId);
    this.inventory = new InventoryStore(deps.db, deps.newId);
    this.tasks = new TaskStore(deps.db, deps.newId);
    this.audit = new AuditStore(deps.db);
    this.idempotency = new IdempotencyStore(deps.db);
    this.deadLetters = new DeadLetterStore(deps.db);
    this.scope = new Scope(this.tenancy, deps.now);
    const inventory = this.inventory;
    this.resourceReads = new ResourceCache(deps.db, (tenantId, id) =>
      inventory.getResource(tenantId, id),
    );
    const outbox = new OutboxStore(deps.db);
    this.taskService = new TaskService({
      tasks: this.tasks,
      outbox,
      newId: deps.newId,
      now: deps.now,
    });
    const core: FacadeCore = {
      db: deps.db,
      newId: deps.newId,
      now: deps.now,
      scope: this.scope,
      tenancy: this.tenancy,
      inventory: this.inventory,
      resourceReads: this.resourceReads,
      tasks: this.tasks,
      taskService: this.taskService,
      audit: this.audit,
      admission: new Admission({
        inventory: this.inventory,
        platform: new PlatformStore(deps.db),
        now: deps.now,
        ...(deps.admissionTtlMs !== undefined ? { ttlMs: deps.admissionTtlMs } : {}),
      }),
    };
    this.#tenancy = new TenancyFacade(core);
    this.#resources = new ResourceFacade(core);
    this.#quotas = new QuotaFacade(core);
    this.#tasks = new TaskFacade(core);
    this.#audit = new AuditFacade(core);
    this.#catalog = new CatalogFacade(deps);
    this.#deadLetters = new DeadLetterFacade(
      this.deadLetters,
      new DeadLetterService({
        db: deps.db,
        deadLetters: this.deadLetters,
        inbox: new InboxStore(deps.db),
        outbox,
        audit: this.audit,
        tasks: this.taskService,
        newId: deps.newId,
        now: deps.now,
      }),
    );
    this.#operations = new OperationsFacade(deps);
  }

  // ---------------------------------------------------------------- scope (facade/scope.ts)

  readonly claimedTenantId: Scope["claimedTenantId"] = (...a) => this.scope.claimedTenantId(...a);

  // ---------------------------------------------------------------- tenancy (facade/tenancy.ts)

  readonly listTenants: TenancyFacade["listTenants"] = (...a) => this.#tenancy.listTenants(...a);
  readonly getTenant: TenancyFacade["getTenant"] = (...a) => this.#tenancy.getTenant(...a);
  readonly createTenant: TenancyFacade["createTenant"] = (...a) => this.#tenancy.createTenant(...a);
  readonly updateTenant: TenancyFacade["updateTenant"] = (...a) => this.#tenancy.updateTenant(...a);
  readonly deleteTenant: TenancyFacade["deleteTenant"] = (...a) => this.#tenancy.deleteTenant(...a);
  readonly listProjects: TenancyFacade["listProjects"] = (...a) => this.#tenancy.listProjects(...a);
  readonly getProject: TenancyFacade["getProject"] = (...a) => this.#tenancy.getProject(...a);
  readonly createProject: TenancyFacade["createProject"] = (...a) =>
    this.#tenancy.createProject(...a);
  readonly updateProject: TenancyFacade["updateProject"] = (...a) =>
    this.#tenancy.updateProject(...a);
  readonly deleteProject: TenancyFacade["deleteProject"] = (...a) =>
    this.#tenancy.deleteProject(...a);
  readonly listEnvironments: TenancyFacade["listEnvironments"] = (...a) =>
    this.#tenancy.listEnvironments(...a);
  readonly getEnvironment: TenancyFacade["getEnvironment"] = (...a) =>
    this.#tenancy.getEnvironment(...a);
  readonly createEnvironment: TenancyFacade["createEnvironment"] = (...a) =>
    this.#tenancy.createEnvironment(...a);
  readonly updateEnvironment: TenancyFacade["updateEnvironment"] = (...a) =>
    this.#tenancy.updateEnvironment(...a);
  readonly deleteEnvironment: TenancyFacade["deleteEnvironment"] = (...a) =>
    this.#tenancy.deleteEnvironment(...a);

  // ---------------------------------------------------------------- resources (facade/resources.ts)

  readonly listResources: ResourceFacade["listResources"] = (...a) =>
    this.#resources.listResources(...a);
  readonly getResource: ResourceFacade["getResource"] = (...a) => this.#resources.getResource(...a);
  readonly createResource: ResourceFacade["createResource"] = (...a) =>
    this.#resources.createResource(...a);
  readonly updateResource: ResourceFacade["updateResource"] = (...a) =>
    this.#resources.updateResource(...a);
  readonly deleteResource: ResourceFacade["deleteResource"] = (...a) =>
    this.#resources.deleteResource(...a);

  // ---------------------------------------------------------------- quotas (facade/quotas.ts)

  readonly getQuotas: QuotaFacade["getQuotas"] = (...a) => this.#quotas.getQuotas(...a);
  readonly setQuota: QuotaFacade["setQuota"] = (...a) => this.#quotas.setQuota(...a);

  // ---------------------------------------------------------------- tasks (facade/tasks.ts)

  readonly listTasks: TaskFacade["listTasks"] = (...a) => this.#tasks.listTasks(...a);
  readonly getTask: TaskFacade["getTask"] = (...a) => this.#tasks.getTask(...a);
  readonly cancelTask: TaskFacade["cancelTask"] = (...a) => this.#tasks.cancelTask(...a);
  readonly isFinished: TaskFacade["isFinished"] = (...a) => this.#tasks.isFinished(...a);

  // ---------------------------------------------------------------- audit (facade/audit.ts)

  readonly listAudit: AuditFacade["listAudit"] = (...a) => this.#audit.listAudit(...a);

  // ---------------------------------------------------------------- catalog (facade/catalog.ts)

  readonly listCatalog: CatalogFacade["listCatalog"] = (...a) => this.#catalog.listCatalog(...a);
  readonly getCatalog: CatalogFacade["getCatalog"] = (...a) => this.#catalog.getCatalog(...a);
  readonly listPlatform: CatalogFacade["listPlatform"] = (...a) => this.#catalog.listPlatform(...a);
  readonly getPlatform: CatalogFacade["getPlatform"] = (...a) => this.#catalog.getPlatform(...a);

  // ---------------------------------------------------------------- dead letters (facade/dead-letters.ts)

  readonly listDeadLetters: DeadLetterFacade["listDeadLetters"] = (...a) =>
    this.#deadLetters.listDeadLetters(...a);
  readonly getDeadLetter: DeadLetterFacade["getDeadLetter"] = (...a) =>
    this.#deadLetters.getDeadLetter(...a);
  readonly replayDeadLetter: DeadLetterFacade["replayDeadLetter"] = (...a) =>
    this.#deadLetters.replayDeadLetter(...a);
  readonly discardDeadLetter: DeadLetterFacade["discardDeadLetter"] = (...a) =>
    this.#deadLetters.discardDeadLetter(...a);

  // ---------------------------------------------------------------- operations (facade/operations.ts)

  readonly listLeases: OperationsFacade["listLeases"] = (...a) => this.#operations.listLeases(...a);
  readonly databaseStatus: OperationsFacade["databaseStatus"] = (...a) =>
    this.#operations.databaseStatus(...a);
  readonly startBackup: OperationsFacade["startBackup"] = (...a) =>
    this.#operations.startBackup(...a);
  readonly listBackups: OperationsFacade["listBackups"] = (...a) =>
    this.#operations.listBackups(...a);
  readonly getBackup: OperationsFacade["getBackup"] = (...a) => this.#operations.getBackup(...a);
}
