import { TenantServerSpec } from "../../src/contexts/inventory/index.js";
import type { Resource } from "../../src/contexts/inventory/index.js";
import type { StepSpec } from "../common/commands.js";
import type { KindPlan, PassContext } from "../common/pass.js";
import { specOf } from "../common/spec.js";
import { ResourceReconciler } from "../common/resource-reconciler.js";
import type { ResourceStatus } from "../common/status.js";

/** Servers (Maskin): reserve a physical server of the machine class, provision it, report its address. */
export class ServerReconciler extends ResourceReconciler {
  readonly kind = "server" as const;

  async plan({ resource, allocate }: PassContext): Promise<KindPlan> {
    const spec = specOf(TenantServerSpec, resource);
    const [server] = await allocate.servers(spec.machineClass, 1);
    if (!server) throw new Error("no server reserved");
    return {
      phases: [
        [
          {
            name: "main",
            service: "maskin",
            action: "provision",
            data: {
              server_id: server.id,
              server_name: server.name,
              machine_class: server.machineClass,
              image: spec.image,
            },
          },
        ],
      ],
      observed: (steps) => ({
        serverId: server.id,
        serverName: server.name,
        machineClass: server.machineClass,
        address: steps.main?.state === "done" ? (steps.main.result?.address ?? null) : null,
      }),
    };
  }

  teardown(_resource: Resource, status: ResourceStatus): readonly (readonly StepSpec[])[] {
    if (typeof status.serverId !== "string") return [];
    return [
      [
        {
          name: "main",
          service: "maskin",
          action: "deprovision",
          data: { server_id: status.serverId },
        },
      ],
    ];
  }
}
