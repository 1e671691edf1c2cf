import { NetworkSpec } from "../../src/contexts/inventory/index.js";
import type { StepSpec } from "../common/commands.js";
import type { KindPlan, PassContext } from "../common/pass.js";
import { specOf } from "../common/spec.js";
import { ResourceReconciler, type ReconcilerDeps } from "../common/resource-reconciler.js";
import type { Summary } from "../common/status.js";

/**
 * Networks (Nett): reserve a VLAN and an IPv4 prefix from the network pool, apply them on the
 * datacenter's network, and report VLAN, CIDR and gateway. Once ready it asks Nett now and then
 * what is really configured; a difference (drift) is applied again on the next pass.
 */
export class NetworkReconciler extends ResourceReconciler {
  readonly kind = "network" as const;
  readonly #observeEveryMs: number;

  constructor(deps: ReconcilerDeps, observeEveryMs: number) {
    super(deps);
    this.#observeEveryMs = observeEveryMs;
  }

  async plan({ resource, allocate }: PassContext): Promise<KindPlan> {
    const spec = specOf(NetworkSpec, resource);
    const pool = await allocate.networkPool(spec.networkPool);
    const vlanId = await allocate.vlan(pool);
    const prefix = await allocate.prefix(pool, spec.prefixLength);
    return {
      phases: [
        [
          {
            name: "main",
            service: "nett",
            action: "apply",
            data: { vlan_id: vlanId, cidr: prefix },
          },
        ],
      ],
      observed: (steps) => ({
        networkPool: pool,
        vlanId,
        cidr: prefix,
        gateway: steps.main?.state === "done" ? (steps.main.result?.gateway ?? null) : null,
      }),
    };
  }

  teardown(): readonly (readonly StepSpec[])[] {
    return [[{ name: "main", service: "nett", action: "teardown", data: {} }]];
  }

  override async afterReady(
    { resource, status, allocate, now }: PassContext,
    run: (phases: readonly (readonly StepSpec[])[]) => "done" | "pending",
  ): Promise<Summary | undefined> {
    // A network moved to another pool holds its old VLAN, and a resized one its old prefix,
    // until the new one is in place.
    if (
      typeof status.networkPool === "string" &&
      allocate.held.vlans.some((v) => v.networkPool !== status.networkPool)
    )
      await allocate.releaseVlansExcept(status.networkPool);
    if (
      typeof status.cidr === "string" &&
      allocate.held.prefixes.some((p) => p.prefix !== status.cidr)
    )
      await allocate.releasePrefixesExcept(status.cidr);
    const observeName = Object.keys(status.steps).find((n) => n.startsWith("observe:"));
    const observe = observeName ? status.steps[observeName] : undefined;
    // A counter that only grows: every observation is a new command with a new id.
    const count = typeof status.observations === "number" ? status.observations : 0;
    if (observe?.state === "done" && observe.generation === resource.generation) {
      const result = observe.result ?? {};
      const drifted =
        result.present !== true || result.vlan_id !== status.vlanId || result.cidr !== status.cidr;
      if (drifted && status.steps.main) {
        // Nett reports something else than we applied: apply it again on the next pass.
        status.steps.main = { ...status.steps.main, state: "stale" };
        if (observeName) delete status.steps[observeName];
        return {
          phase: "reconciling",
          reason: "DriftDetected",
          message: `the network reported vlan ${String(result.vlan_id)} cidr ${String(result.cidr)} (present: ${String(result.present)}); applying vlan ${String(status.vlanId)} cidr ${String(status.cidr)} again`,
        };
      }
    }
    const due =
      !observe ||
      observe.generation !== resource.generation ||
      (observe.state === "done" &&
        now.getTime() - Date.parse(observe.dispatchedAt) > this.#observeEveryMs);
    if (due && (observe?.state ?? "done") !== "pending") {
      if (observeName) delete status.steps[observeName];
      status.observations = count + 1;
      run([
        [
          {
            name: `observe:${count + 1}`,
            target: "main",
            service: "nett",
            action: "observe",
            data: {},
          },
        ],
      ]);
    }
    return undefined;
  }
}
