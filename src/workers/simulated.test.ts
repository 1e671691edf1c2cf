import { describe, expect, it } from "vitest";
import type { SimulatorStore } from "../simulator/index.js";
import { type DriverRequest, PermanentDriverError } from "./driver.js";
import { SimulatedDriver } from "./simulated.js";

/** A store that records what was asked of it: a refused command must not reach it at all. */
function recordingStore(): { store: SimulatorStore; calls: string[] } {
  const calls: string[] = [];
  const store = new Proxy({} as SimulatorStore, {
    get: (_target, name) => async () => {
      calls.push(String(name));
      // No fault anywhere.
      return name === "faultsAmong" ? new Set<string>() : undefined;
    },
  });
  return { store, calls };
}

const request = (datacenterId: string | null): DriverRequest => ({
  service: "nett",
  operation: "provision",
  resourceKind: "network",
  resourceId: "01a2315f-3a0e-70dd-90ee-267a99f8122b",
  generation: 1,
  step: "main",
  data: { vlan_id: 100, cidr: "10.80.0.0/28" },
  messageId: "m1",
  datacenterId,
});

const driver = (store: SimulatorStore, site?: string) =>
  new SimulatedDriver({
    store,
    latencyMs: 0,
    failureRate: 0,
    random: () => 0.5,
    sleep: async () => undefined,
    site,
  });

describe("SimulatedDriver of a site", () => {
  it("refuses a command for another datacenter's infrastructure, before touching a device", async () => {
    const { store, calls } = recordingStore();
    const refused = await driver(store, "dc2")
      .prepare(request("dc1"), async () => undefined)
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(PermanentDriverError);
    expect((refused as Error).message).toBe(
      "a command for dc1's infrastructure reached a worker of dc2: it is not applied here (check DV_NATS_REMOTE_DATACENTERS and the site link's subjects)",
    );
    expect(calls).toEqual([]);
  });

  it("takes its own site's commands, and any command when it serves every datacenter", async () => {
    for (const [site, dc] of [
      ["dc2", "dc2"],
      [undefined, "dc1"],
    ] as const) {
      const { store, calls } = recordingStore();
      await driver(store, site).prepare(request(dc), async () => undefined);
      expect(calls).toEqual(["faultsAmong"]);
    }
  });
});
