import type { Outcome } from "./ports.js";
import type { ResourceStatus } from "./status.js";

/**
 * The commands of a status whose outcome a pass must look up: the ones still in flight, and the
 * failed ones too (an operator may have replayed their dead letter). Done is final, and a stale
 * step waits to be sent again whatever its old command answered.
 */
export function commandsToLookUp(status: ResourceStatus): { service: string; id: string }[] {
  const out: { service: string; id: string }[] = [];
  for (const record of Object.values(status.steps)) {
    if (record.state === "done" || record.state === "stale") continue;
    if (record.state === "failed" && status.rolledBack === record.generation) continue;
    out.push({ service: record.service, id: record.command });
  }
  return out;
}

/**
 * Folds what became of commands into their step records (in place). The outcomes come from the
 * system of record (the workers' inbox, the dead letters), not from NATS: a lost event only
 * delays a pass, it never loses one.
 */
export function foldOutcomes(status: ResourceStatus, outcomes: ReadonlyMap<string, Outcome>): void {
  for (const [name, record] of Object.entries(status.steps)) {
    if (record.state === "done" || record.state === "stale") continue;
    if (record.state === "failed" && status.rolledBack === record.generation) continue;
    const outcome = outcomes.get(record.command);
    if (!outcome) continue;
    if (outcome.state === "done") {
      const { error: _previous, ...rest } = record;
      status.steps[name] = { ...rest, state: "done", result: outcome.result };
    } else if (outcome.state === "skipped") {
      // Not done (its task had ended): nothing is in flight; a pass that still wants it sends
      // it anew.
      status.steps[name] = { ...record, state: "stale" };
    } else if (outcome.state === "failed") {
      status.steps[name] = { ...record, state: "failed", error: outcome.reason };
    } else if (record.state === "failed") {
      // Its dead letter was replayed and the new command is on its way: in flight again.
      status.steps[name] = { ...record, state: "pending" };
    }
  }
}
