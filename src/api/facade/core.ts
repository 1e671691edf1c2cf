import type { AuditStore } from "../../contexts/audit/index.js";
import type { InventoryStore, ResourceCache } from "../../contexts/inventory/index.js";
import type { TaskStore } from "../../contexts/task/index.js";
import type { TenancyStore } from "../../contexts/tenancy/index.js";
import type { Database } from "../../db/index.js";
import type { IdGenerator } from "../../kernel/index.js";
import type { TaskService } from "../../workflow/index.js";
import type { Admission } from "../admission.js";
import type { Scope } from "./scope.js";

/**
 * What the parts of the facade share: the database, the clock, the contexts' stores, the task
 * workflow, admission of references, and the caller's {@link Scope}. Built once by `ApiFacade`.
 */
export interface FacadeCore {
  readonly db: Database;
  readonly newId: IdGenerator;
  readonly now: () => Date;
  readonly scope: Scope;
  readonly tenancy: TenancyStore;
  readonly inventory: InventoryStore;
  /** Resources by id as of each read, from memory while unchanged (the `GET` of one). */
  readonly resourceReads: ResourceCache;
  readonly tasks: TaskStore;
  readonly taskService: TaskService;
  readonly audit: AuditStore;
  readonly admission: Admission;
}
