// The tenant-resource reconcilers with real PostgreSQL, nats-server, workers and controllers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/support/backbone.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import type { Resource } from "../src/contexts/inventory/index.js";
import { inTransaction } from "../src/db/index.js";
import { VersionConflictError } from "../src/kernel/index.js";
import type { Condition } from "./index.js";

let p: Plane;
beforeAll(async () => {
  p = await startPlane({
    controllers: true,
    workers: ["nett", "maskin", "plattform", "objekt"],
    controller: { observeEveryMs: 500 },
  });
});
afterAll(async () => p.close());

const operator = {
  principal: { subject: "test", role: "operator" as const },
  correlationId: "test",
};

async function resource(id: string): Promise<Resource> {
  return p.services.inventory.getResourceById(id);
}

function condition(r: Resource, type: Condition["type"]): Condition | undefined {
  return ((r.status.conditions ?? []) as Condition[]).find((c) => c.type === type);
}

async function until(
  id: string,
  check: (r: Resource) => boolean,
  what: string,
  timeoutMs = 20_000,
): Promise<Resource> {
  return eventually(
    async () => {
      const r = await resource(id).catch(() => undefined);
      return r && check(r) ? r : undefined;
    },
    timeoutMs,
    what,
  );
}

/**
 * Runs a write at the resource's current version. The drift checks (observeEveryMs 500 here)
 * write status, which moves the version between a read and a write: as the conflict says,
 * re-read and send the change again.
 */
async function atLiveVersion<T>(id: string, write: (version: number) => Promise<T>): Promise<T> {
  return eventually(
    async () => {
      const live = await resource(id);
      try {
        return await write(live.version);
      } catch (err) {
        if (err instanceof VersionConflictError) return undefined;
        throw err;
      }
    },
    10_000,
    "a write at the current version",
  );
}

const ready = (r: Resource) =>
  condition(r, "Ready")?.status === "True" && r.observedGeneration === r.generation;

describe("networks", () => {
  it("reserve a VLAN and a prefix, apply them, report Ready, and finish the task", async () => {
    const { resource: created, taskId } = await p.request("network", "web", { prefixLength: 26 });
    const done = await until(created.id, ready, "the network to be Ready");
    expect(done.status).toMatchObject({
      vlanId: expect.any(Number),
      cidr: expect.stringMatching(/\/26$/),
      gateway: expect.any(String),
      networkPool: "dc1-tenant",
    });
    expect(condition(done, "Reconciling")).toBeUndefined();
    expect(condition(done, "Stalled")).toBeUndefined();
    expect(await p.taskReaches(taskId, ["succeeded"])).toBe("succeeded");
    const history = (await p.services.taskStore.history(taskId)).map((e) => [e.verb, e.actor]);
    expect(history).toEqual([
      ["created", "operator:test"],
      ["queued", "sentral"],
      ["started", "nett"],
      ["succeeded", "sentral"],
    ]);
  });

  it("apply a new size, then release the old prefix", async () => {
    const { resource: created } = await p.request("network", "resize", { prefixLength: 27 });
    const first = await until(created.id, ready, "Ready at /27");
    const updated = await atLiveVersion(created.id, (version) =>
      inTransaction(p.t.db, (tx) =>
        p.services.inventory.updateResourceSpec(tx, created.tenantId, created.id, version, {
          spec: { prefixLength: 25 },
        }),
      ),
    );
    expect(updated.generation).toBeGreaterThan(first.generation);
    const second = await until(
      created.id,
      (r) => ready(r) && r.observedGeneration === updated.generation,
      "Ready at /25",
    );
    expect(second.status.cidr).toMatch(/\/25$/);
    await eventually(
      async () => {
        const held = await p.services.inventory.allocationsOf(created.id);
        return held.prefixes.length === 1 ? held : undefined;
      },
      10_000,
      "the old prefix to be released",
    );
  });

  it("delete: tear down first, then release the VLAN and prefix, then disappear", async () => {
    const { resource: created } = await p.request("network", "gone", { prefixLength: 28 });
    await until(created.id, ready, "Ready");
    const change = await atLiveVersion(created.id, (version) =>
      p.facade.deleteResource(operator, p.path, "network", created.id, version),
    );
    await eventually(
      async () => ((await resource(created.id).catch(() => null)) === null ? true : undefined),
      20_000,
      "the network to disappear",
    );
    expect(await p.services.inventory.allocationsOf(created.id)).toEqual({
      vlans: [],
      prefixes: [],
      servers: [],
      capacity: [],
    });
    expect(await p.taskReaches(change.task.id, ["succeeded"])).toBe("succeeded");
    const effects = (await p.services.simulator.effectsOf(created.id)).map((e) => e.operation);
    expect(effects).toEqual(["provision", "delete"]);
  });

  it("end in the dead-letter store when the driver always fails, and finish after a replay", async () => {
    const { resource: created, taskId } = await p.request("network", "broken", {
      prefixLength: 28,
    });
    await p.services.simulator.setFault({
      service: "nett",
      resourceId: created.id,
      mode: "permanent",
      message: "port channel down",
    });
    const stalled = await until(
      created.id,
      (r) => condition(r, "Stalled")?.status === "True",
      "Stalled",
    );
    expect(condition(stalled, "Stalled")).toMatchObject({
      reason: "MainFailed",
      message: expect.stringContaining("port channel down"),
    });
    expect(await p.taskReaches(taskId, ["failed"])).toBe("failed");
    const held = await p.services.inventory.allocationsOf(created.id);
    expect(held.vlans).toHaveLength(1);
    const dead = (
      await p.services.deadLetterStore.list({ state: "open" }, { limit: 100 })
    ).items.find((d) => d.taskId === taskId);
    expect(dead).toBeDefined();
    // The operator fixes the cause, then replays.
    await p.services.simulator.clearFaults(created.id);
    await p.services.deadLetters.replay(
      dead?.id ?? "",
      "operator:bob",
      "port channel fixed",
      "corr-replay",
    );
    const healed = await until(created.id, ready, "Ready after the replay");
    expect(healed.status.vlanId).toBe(held.vlans[0]?.vlanId);
    expect(await p.taskReaches(taskId, ["succeeded"])).toBe("succeeded");
  });

  it("correct drift: what Nett reports differently is applied again", async () => {
    const { resource: created } = await p.request("network", "drifty", { prefixLength: 28 });
    const live = await until(created.id, ready, "Ready");
    expect(
      await p.services.simulator.drift("nett", created.id, "main", {
        vlan_id: 4094,
        cidr: "192.0.2.0/28",
      }),
    ).toBe(true);
    await eventually(
      async () => {
        const effects = await p.services.simulator.effectsOf(created.id);
        return effects.filter((e) => e.operation === "provision").length >= 2 ? true : undefined;
      },
      20_000,
      "the network to be applied again",
    );
    const device = await p.services.simulator.getDevice("nett", created.id, "main");
    expect(device?.state).toMatchObject({ vlan_id: live.status.vlanId, cidr: live.status.cidr });
    await until(created.id, ready, "Ready again");
  });
});

describe("cancelled tasks", () => {
  it("stop the platform working towards their generation", async () => {
    await p.workers.get("nett")?.stop();
    const { resource: created, taskId } = await p.request("network", "cancelled", {
      prefixLength: 28,
    });
    await p.taskReaches(taskId, ["queued"]);
    await p.facade.cancelTask(operator, p.path.tenant, taskId, "wrong size");
    const stalled = await until(
      created.id,
      (r) => condition(r, "Stalled")?.status === "True",
      "Stalled",
    );
    expect(condition(stalled, "Stalled")).toMatchObject({ reason: "Cancelled" });
    p.workers.set("nett", await p.worker("nett"));
    // The worker skips the command of the cancelled task: nothing is built.
    await eventually(async () =>
      (await p.nats.jsm.streams.info("DV_COMMANDS")).state.messages === 0 ? true : undefined,
    );
    expect(await p.services.simulator.effectsOf(created.id)).toEqual([]);
    expect((await p.services.taskStore.get(taskId)).state).toBe("cancelled");
  });
});

describe("servers and buckets", () => {
  it("provision a server from the pool and report its address", async () => {
    const { resource: created, taskId } = await p.request("server", "app", {
      machineClass: "m1-large",
      image: "debian-12",
    });
    const done = await until(created.id, ready, "the server to be Ready");
    expect(done.status).toMatchObject({
      serverName: expect.stringMatching(/^dc1-a-/),
      address: expect.stringMatching(/^10\./),
    });
    expect(await p.taskReaches(taskId, ["succeeded"])).toBe("succeeded");
  });

  it("reserve bucket capacity and stall, naming it, when there is not enough", async () => {
    const { resource: ok } = await p.request("bucket", "logs", { quotaGiB: 10, versioning: false });
    await until(ok.id, ready, "the bucket to be Ready");
    // The datacenter has 10,000,000 GiB (test/fixtures/platform) and a bucket may ask for at
    // most 1,000,000: of ten such, nine fit beside "logs" and one does not.
    const huge = [];
    for (let i = 0; i < 10; i++)
      huge.push(await p.request("bucket", `huge-${i}`, { quotaGiB: 1_000_000, versioning: false }));
    const settled = await Promise.all(
      huge.map(({ resource }) =>
        until(
          resource.id,
          (r) => condition(r, "Stalled")?.status === "True" || ready(r),
          "Stalled or Ready",
        ),
      ),
    );
    const stalled = settled.filter((r) => condition(r, "Stalled")?.status === "True");
    expect(stalled).toHaveLength(1);
    const [refused] = stalled as [Resource];
    expect(condition(refused, "Stalled")).toMatchObject({
      reason: "InsufficientCapacity",
      message: expect.stringContaining("objekt.storage_bytes"),
    });
    const taskId = huge.find(({ resource }) => resource.id === refused.id)?.taskId ?? "";
    expect(await p.taskReaches(taskId, ["failed"])).toBe("failed");
  });
});

describe("the cluster saga", () => {
  it("builds network, servers and bootstrap in order", async () => {
    const { resource: created, taskId } = await p.request("cluster", "k1", {
      version: "1.34",
      machineClass: "m1-large",
      workers: 2,
      prefixLength: 26,
    });
    const done = await until(created.id, ready, "the cluster to be Ready", 30_000);
    expect(done.status).toMatchObject({
      endpoint: expect.stringMatching(/^https:/),
      servers: expect.any(Array),
    });
    expect((done.status.servers as unknown[]).length).toBe(3);
    const order = (await p.services.simulator.effectsOf(created.id)).map((e) =>
      e.step.replace(/:.*/, ""),
    );
    expect(order[0]).toBe("network");
    expect(order.at(-1)).toBe("bootstrap");
    expect(await p.taskReaches(taskId, ["succeeded"])).toBe("succeeded");
  });

  it("undoes every step and releases everything when the bootstrap fails, and fails the task", async () => {
    const { resource: created, taskId } = await p.request("cluster", "k-broken", {
      version: "1.34",
      machineClass: "m1-large",
      workers: 1,
      prefixLength: 26,
    });
    await p.services.simulator.setFault({
      service: "plattform",
      resourceId: created.id,
      step: "bootstrap",
      mode: "permanent",
      message: "etcd quorum lost",
    });
    const stalled = await until(
      created.id,
      (r) => condition(r, "Stalled")?.status === "True",
      "the cluster to stall",
      30_000,
    );
    expect(condition(stalled, "Stalled")).toMatchObject({
      reason: "BootstrapFailed",
      message: expect.stringContaining("etcd quorum lost"),
    });
    expect(await p.services.inventory.allocationsOf(created.id)).toEqual({
      vlans: [],
      prefixes: [],
      servers: [],
      capacity: [],
    });
    expect(await p.taskReaches(taskId, ["failed"])).toBe("failed");
    const effects = (await p.services.simulator.effectsOf(created.id)).map(
      (e) => `${e.operation} ${e.step.replace(/:.*/, "")}`,
    );
    expect(effects.filter((e) => e.startsWith("provision"))).toEqual([
      "provision network",
      "provision server",
      "provision server",
    ]);
    expect(effects.filter((e) => e.startsWith("delete")).sort()).toEqual([
      "delete network",
      "delete server",
      "delete server",
    ]);
    // Nothing of it is left on the simulated devices.
    for (const step of ["network", "bootstrap"])
      expect(
        await p.services.simulator.getDevice(
          step === "network" ? "nett" : "plattform",
          created.id,
          step,
        ),
      ).toBeUndefined();
  });
});
