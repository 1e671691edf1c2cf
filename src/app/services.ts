import { AuditStore } from "../contexts/audit/index.js";
import { InventoryStore } from "../contexts/inventory/index.js";
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
import { SimulatorStore } from "../simulator/index.js";
import { DeadLetterService, TaskService } from "../workflow/index.js";

/** Every store and application service of the control plane over one database. */
export interface Services {
  readonly db: Database;
  readonly newId: IdGenerator;
  readonly now: () => Date;
  readonly tenancy: TenancyStore;
  readonly inventory: InventoryStore;
  readonly platform: PlatformStore;
  readonly taskStore: TaskStore;
  readonly tasks: TaskService;
  readonly audit: AuditStore;
  readonly outbox: OutboxStore;
  readonly inbox: InboxStore;
  readonly idempotency: IdempotencyStore;
  readonly deadLetterStore: DeadLetterStore;
  readonly deadLetters: DeadLetterService;
  readonly simulator: SimulatorStore;
}

/** Builds the stores and services; nothing here does I/O until called. */
export function createServices(
  db: Database,
  newId: IdGenerator,
  now: () => Date = () => new Date(),
  /** The datacenter of this process: what it writes to the outbox, its site's relays publish. */
  origin: string | null = null,
): Services {
  const taskStore = new TaskStore(db, newId);
  const outbox = new OutboxStore(db, origin);
  const tasks = new TaskService({ tasks: taskStore, outbox, newId, now });
  const audit = new AuditStore(db);
  const inbox = new InboxStore(db);
  const deadLetterStore = new DeadLetterStore(db);
  return {
    db,
    newId,
    now,
    tenancy: new TenancyStore(db, newId),
    inventory: new InventoryStore(db, newId),
    platform: new PlatformStore(db),
    taskStore,
    tasks,
    audit,
    outbox,
    inbox,
    idempotency: new IdempotencyStore(db),
    deadLetterStore,
    deadLetters: new DeadLetterService({
      db,
      deadLetters: deadLetterStore,
      inbox,
      outbox,
      audit,
      tasks,
      newId,
      now,
    }),
    simulator: new SimulatorStore(db),
  };
}
