import { ClusterSpec } from "../../src/contexts/inventory/index.js";
import type { Resource } from "../../src/contexts/inventory/index.js";
import type { StepSpec } from "../common/commands.js";
import type { KindPlan, PassContext } from "../common/pass.js";
import { specOf } from "../common/spec.js";
import { ResourceReconciler } from "../common/resource-reconciler.js";
import type { ResourceStatus } from "../common/status.js";

/**
 * Clusters (Plattform) as a saga across services: a network (Nett), then its servers (Maskin),
 * then the Kubernetes bootstrap (Plattform). A failure at any step undoes the steps before it in
 * reverse order and releases the network's VLAN and prefix and every server: nothing stays
 * allocated for a failed cluster.
 */
export class ClusterReconciler extends ResourceReconciler {
  readonly kind = "cluster" as const;
  override readonly rollBackOnFailure = true;

  async plan({ resource, allocate }: PassContext): Promise<KindPlan> {
    const spec = specOf(ClusterSpec, resource);
    const pool = await allocate.networkPool(undefined);
    const vlanId = await allocate.vlan(pool);
    const prefix = await allocate.prefix(pool, spec.prefixLength);
    const servers = await allocate.servers(spec.machineClass, spec.workers + 1);
    return {
      phases: [
        [
          {
            name: "network",
            service: "nett",
            action: "apply",
            data: { vlan_id: vlanId, cidr: prefix },
            undo: { service: "nett", action: "teardown", data: {} },
          },
        ],
        servers.map((server) => ({
          name: `server:${server.name}`,
          service: "maskin" as const,
          action: "provision",
          data: {
            server_id: server.id,
            server_name: server.name,
            machine_class: server.machineClass,
            image: `k8s-${spec.version}`,
          },
          undo: {
            service: "maskin" as const,
            action: "deprovision",
            data: { server_id: server.id },
          },
        })),
        [
          {
            name: "bootstrap",
            service: "plattform",
            action: "bootstrap",
            data: { version: spec.version, servers: servers.map((s) => s.name), cidr: prefix },
            undo: { service: "plattform", action: "teardown", data: {} },
          },
        ],
      ],
      observed: (steps) => ({
        vlanId,
        cidr: prefix,
        servers: servers.map((s) => ({ id: s.id, name: s.name })),
        endpoint:
          steps.bootstrap?.state === "done" ? (steps.bootstrap.result?.endpoint ?? null) : null,
      }),
    };
  }

  teardown(_resource: Resource, status: ResourceStatus): readonly (readonly StepSpec[])[] {
    const servers = Array.isArray(status.servers)
      ? (status.servers as { id: string; name: string }[])
      : [];
    return [
      [{ name: "bootstrap", service: "plattform", action: "teardown", data: {} }],
      servers.map((s) => ({
        name: `server:${s.name}`,
        service: "maskin" as const,
        action: "deprovision",
        data: { server_id: s.id },
      })),
      [{ name: "network", service: "nett", action: "teardown", data: {} }],
    ];
  }
}
