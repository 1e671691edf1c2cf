// The reconcile ports contract against the in-memory world the reconcilers' unit tests run on
// (test/support/memory-world.ts); ports.int.test.ts runs the same cases against PostgreSQL.
import { describe, expect, it } from "vitest";
import { MemoryWorld } from "../../test/support/memory-world.js";
import { reconcilePortsContract } from "../../test/support/reconcile-contract.js";

reconcilePortsContract("the memory world", async () => {
  const world = new MemoryWorld();
  let datacenters = 0;
  let pools = 0;
  return {
    ports: world.ports,
    seed: {
      newId: () => world.newId(),
      async datacenter(capacity = {}) {
        const name = `dc${++datacenters}`;
        world.addDatacenter(name, { capacity });
        return name;
      },
      async networkPool(input) {
        const name = `np${++pools}`;
        world.addNetworkPool({ name, ...input });
        return name;
      },
      stallPool: async (name, reason, message) => world.stallPool(name, reason, message),
      servers: async (input) => world.addServers({ ...input, namePrefix: `sp${++pools}` }),
      resource: async ({ kind, datacenterId, spec = {} }) =>
        world.createResource({ kind, datacenterId, spec }),
      requestDeletion: async (id) => world.requestDeletion(id).resource,
      readResource: async (id) => world.resource(id),
      task: async ({ resource, operation, generation }) =>
        world.createTask(resource, operation, generation === undefined ? {} : { generation }),
      async moveTask(id, verb) {
        world.transition(id, verb);
      },
      readTask: async (id) => world.task(id),
      history: async (id) => world.history(id).map(({ verb, message }) => ({ verb, message })),
      done: async (_service, id, result) => world.complete(id, result),
      skipped: async (_service, id) => world.skip(id),
      deadLetter: async (_service, id, reason) => world.deadLetter(id, reason),
      async replay(deadLetterId, newCommandId) {
        world.replay(deadLetterId, { newCommandId });
      },
      discard: async (id) => world.discard(id),
      deliveryFailed: async (id, error) => world.failDelivery(id, error),
      grant: async (shard, holder) => world.grant(shard, holder),
      release: async (grant) => world.expire(grant.shard),
    },
    close: async () => {},
  };
});

// What the memory world adds to the contract so that a reconciler test fails where PostgreSQL's
// fences, transactions or the audit would catch the reconciler out.
describe("the memory world", () => {
  it("refuses a fenced unit's write for a resource of a shard it does not hold", async () => {
    const world = new MemoryWorld({ shards: 2 });
    world.addDatacenter("dc1");
    const [r0, r1] = [
      world.createResource({ kind: "bucket", spec: {} }),
      world.createResource({ kind: "bucket", spec: {} }),
    ];
    const { ports } = world;
    const mine = world.grant(world.shardOf(r0.id), "a");
    world.grant(world.shardOf(r1.id), "b");
    const write = (id: string, version: number) => ({
      id,
      status: { x: 1 },
      observedGeneration: 1,
      version,
    });
    await expect(
      ports.units.run(async (unit) => {
        expect(await ports.fences.hold(unit, [mine], "a")).toEqual(new Set([mine.shard]));
        await ports.resources.writeStatus(unit, [
          write(r0.id, r0.version),
          write(r1.id, r1.version),
        ]);
      }),
    ).rejects.toThrow(/under no fence/);
    expect(world.resource(r0.id)?.status).toEqual({});
    await ports.units.run(async (unit) => {
      await ports.fences.hold(unit, [mine], "a");
      await ports.resources.writeStatus(unit, [write(r0.id, r0.version)]);
    });
    expect(world.resource(r0.id)?.status).toEqual({ x: 1 });
  });

  it("refuses a unit used after it ended, and a test's write while a unit runs", async () => {
    const world = new MemoryWorld();
    let kept: unknown;
    await world.ports.units.run(async (unit) => {
      kept = unit;
      expect(() => world.addDatacenter("dc1")).toThrow(/while a unit runs/);
    });
    await expect(
      world.ports.resources.lock(kept as Parameters<typeof world.ports.resources.lock>[0], []),
    ).rejects.toThrow(/after it ended/);
  });

  it("runs units one at a time, so none loses another's writes", async () => {
    const world = new MemoryWorld();
    world.addDatacenter("dc1");
    world.addNetworkPool({ name: "np", datacenterId: "dc1", vlans: [{ first: 1, last: 10 }] });
    const owners = Array.from({ length: 5 }, () => ({ kind: "network", id: world.newId() }));
    const got = await Promise.all(
      owners.map((owner) =>
        world.ports.units.run(async (unit) => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          return world.ports.allocations.reserveVlan(unit, { networkPool: "np", owner });
        }),
      ),
    );
    expect(got).toEqual([1, 2, 3, 4, 5]);
  });
});
