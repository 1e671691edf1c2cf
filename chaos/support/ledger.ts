// What the simulated drivers applied, read from their ledger (simulator.effects: one row per side
// effect, with the command that caused it), and the waits every scenario shares.
import type { Database } from "../../src/db/index.js";
import type { TaskState } from "../../src/kernel/index.js";
import type { Services } from "../../src/app/index.js";
import { eventually } from "../../test/support/backbone.js";
import { checkQueue, type QueueVerdict } from "./checker.js";

const TERMINAL: readonly TaskState[] = ["succeeded", "failed", "cancelled"];

/** The resource of every `operation` side effect applied, once per application. */
export async function applied(admin: Database, operation = "provision"): Promise<string[]> {
  const rows = await admin.query<{ resource_id: string }>(
    "SELECT resource_id::text FROM simulator.effects WHERE operation = $1",
    [operation],
  );
  return rows.map((r) => r.resource_id);
}

/** Message ids that caused more than one side effect: a command applied twice. */
export async function twiceApplied(admin: Database): Promise<string[]> {
  const rows = await admin.query<{ message_id: string }>(
    "SELECT message_id::text FROM simulator.effects GROUP BY message_id HAVING count(*) > 1",
  );
  return rows.map((r) => r.message_id);
}

/**
 * Waits until every task has ended; returns the states and how long the wait took (the recovery
 * time, when called right after the last fault healed).
 */
export async function allEnd(
  services: Services,
  taskIds: readonly string[],
  timeoutMs: number,
): Promise<{ states: TaskState[]; tookMs: number }> {
  const started = Date.now();
  const states = await eventually(
    async () => {
      const tasks = await Promise.all(taskIds.map((id) => services.taskStore.get(id)));
      return tasks.every((t) => TERMINAL.includes(t.state)) ? tasks.map((t) => t.state) : undefined;
    },
    timeoutMs,
    `${taskIds.length} tasks to end`,
  );
  return { states, tookMs: Date.now() - started };
}

/**
 * The checker's verdict on provisioned resources: every resource whose creation the API
 * acknowledged must have been provisioned exactly once.
 */
export async function provisionVerdict(
  admin: Database,
  attempted: readonly string[],
  acknowledged: readonly string[],
): Promise<QueueVerdict> {
  return checkQueue({ attempted, acknowledged, applied: await applied(admin) });
}
