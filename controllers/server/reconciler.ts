import type { Resource } from "../../src/contexts/inventory/index.js";
import type { Tx } from "../../src/db/index.js";
import { type KindPlan, ResourceReconciler, type StepSpec } from "../common/resource-reconciler.js";
import type { ResourceStatus } from "../common/status.js";

interface ServerSpec {
  readonly machineClass: string;
  readonly image: string;
}

/** Servers (Maskin): reserve a physical server of the machine class, provision it, report its address. */
export class ServerReconciler extends ResourceReconciler {
  readonly kind = "server" as const;

  protected async plan(tx: Tx, resource: Resource): Promise<KindPlan> {
    const spec = resource.spec as unknown as ServerSpec;
    const [server] = await this.deps.services.inventory.reserveServers(tx, {
      datacenterId: resource.datacenterId,
      machineClass: spec.machineClass,
      count: 1,
      owner: { kind: "server", id: resource.id },
    });
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

  protected teardown(
    _resource: Resource,
    status: ResourceStatus,
  ): readonly (readonly StepSpec[])[] {
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
