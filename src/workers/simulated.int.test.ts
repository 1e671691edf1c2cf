// The simulated devices' batch of effects (SimulatedDriver.applyMany) against PostgreSQL: a
// worker's batch of commands — writes, observations and a delete of the same devices, in one
// transaction — leaves the devices and the ledger as applying them one by one does, and each
// observation answers what the devices held at its place in the batch.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { SimulatorStore } from "../simulator/index.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import type { DriverRequest } from "./driver.js";
import { SimulatedDriver } from "./simulated.js";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t?.drop());

const driver = () =>
  new SimulatedDriver({
    store: new SimulatorStore(t.db),
    latencyMs: 0,
    failureRate: 0,
    random: () => 0.5,
    sleep: async () => undefined,
  });

/** A batch over two devices, `a` and `b`: every kind of effect, each device written twice. */
function batch(a: string, b: string): DriverRequest[] {
  const command = (
    resourceId: string,
    operation: DriverRequest["operation"],
    generation: number,
    data: Record<string, unknown> = {},
  ): DriverRequest => ({
    service: "nett",
    operation,
    resourceKind: "network",
    resourceId,
    generation,
    step: "main",
    data,
    messageId: newId(),
    datacenterId: null,
  });
  return [
    command(a, "observe", 1),
    command(a, "provision", 1, { vlan_id: 100, cidr: "10.80.0.0/28" }),
    command(b, "provision", 1, { vlan_id: 101, cidr: "10.80.0.16/28" }),
    command(a, "update", 2, { vlan_id: 100, cidr: "10.80.0.0/27" }),
    command(a, "observe", 2),
    command(b, "observe", 1),
    command(b, "delete", 1),
    command(b, "observe", 1),
    command(b, "provision", 2, { vlan_id: 102, cidr: "10.80.0.32/28" }),
  ];
}

async function devicesAndLedger(ids: readonly string[]) {
  const devices = await t.admin.query<{ resource_id: string; generation: string; state: unknown }>(
    "SELECT resource_id, generation, state FROM simulator.devices WHERE resource_id = ANY($1::uuid[]) ORDER BY resource_id",
    [ids],
  );
  const ledger = await t.admin.query<{ resource_id: string; operation: string }>(
    "SELECT resource_id, operation FROM simulator.effects WHERE resource_id = ANY($1::uuid[]) ORDER BY id",
    [ids],
  );
  const name = (id: string) => (id === ids[0] ? "a" : "b");
  return {
    devices: devices
      .map((d) => ({ ...d, resource_id: name(d.resource_id) }))
      .sort((x, y) => x.resource_id.localeCompare(y.resource_id)),
    ledger: ledger.map((l) => `${name(l.resource_id)}:${l.operation}`),
  };
}

describe("SimulatedDriver.applyMany", () => {
  it("makes a batch's effects as applying them one by one does", async () => {
    const one = [newId(), newId()];
    const many = [newId(), newId()];
    const d = driver();
    const alone = await inTransaction(t.db, async (tx) => {
      const out: Record<string, unknown>[] = [];
      for (const request of batch(one[0] as string, one[1] as string))
        out.push(await d.apply(tx, request));
      return out;
    });
    const together = await inTransaction(t.db, (tx) =>
      d.applyMany(tx, batch(many[0] as string, many[1] as string)),
    );

    expect(together).toEqual(alone);
    // The observations saw each device as it was at their place in the batch.
    expect(together[0]).toEqual({ present: false, vlan_id: null, cidr: null });
    expect(together[4]).toEqual({ present: true, vlan_id: 100, cidr: "10.80.0.0/27" });
    expect(together[5]).toEqual({ present: true, vlan_id: 101, cidr: "10.80.0.16/28" });
    expect(together[7]).toEqual({ present: false, vlan_id: null, cidr: null });

    const expected = await devicesAndLedger(one);
    expect(await devicesAndLedger(many)).toEqual(expected);
    expect(expected.devices).toEqual([
      expect.objectContaining({ generation: "2", state: { vlan_id: 100, cidr: "10.80.0.0/27" } }),
      expect.objectContaining({ generation: "2", state: { vlan_id: 102, cidr: "10.80.0.32/28" } }),
    ]);
  });
});
