// The workload most fault scenarios share: networks created as a tenant would (through the API
// facade), and at the end the checks every such scenario makes — each network provisioned
// exactly once (the checker over the drivers' ledger), no command applied twice, every task
// `succeeded`, nothing in the dead-letter store.
import { expect } from "vitest";
import type { TaskState } from "../../src/kernel/index.js";
import type { Plane } from "../../test/support/plane.js";
import type { QueueVerdict } from "./checker.js";
import { allEnd, provisionVerdict, twiceApplied } from "./ledger.js";

export interface Settled {
  /** From the call to every task ended, in ms. */
  readonly tookMs: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly violations: number;
  /** Asserts every check (after the scenario recorded its figures). */
  assert(): void;
}

export function networkWorkload(p: Plane) {
  const requested: Awaited<ReturnType<Plane["request"]>>[] = [];
  return {
    requested,
    /** Creates a network; it is acknowledged once the API's transaction committed. */
    async create(name: string): Promise<void> {
      requested.push(await p.request("network", name, { prefixLength: 28 }));
    },
    /** Waits (up to `timeoutMs`) for every task to end, then checks. */
    async settle(timeoutMs: number): Promise<Settled> {
      const { states, tookMs } = await allEnd(
        p.services,
        requested.map((r) => r.taskId),
        timeoutMs,
      );
      const ids = requested.map((r) => r.resource.id);
      // Every creation attempted was acknowledged: a failed one would have failed the scenario.
      const verdict: QueueVerdict = await provisionVerdict(p.t.admin, ids, ids);
      const twice = await twiceApplied(p.t.admin);
      const dead = await p.services.deadLetterStore.list({}, { limit: 100 });
      const notSucceeded = states.filter((s: TaskState) => s !== "succeeded").length;
      return {
        tookMs,
        lost: verdict.lost.length,
        duplicated: verdict.duplicated.length + twice.length,
        violations: notSucceeded + dead.items.length + verdict.unexpected.length,
        assert() {
          expect(verdict).toMatchObject({ lost: [], duplicated: [], unexpected: [], valid: true });
          expect(twice).toEqual([]);
          expect(dead.items.map((d) => d.reason)).toEqual([]);
          expect(states).toEqual(Array(requested.length).fill("succeeded"));
        },
      };
    },
  };
}
