// The server reconciler on the in-memory world (no PostgreSQL): a tenant's server takes a
// physical server of its machine class, Maskin provisions it, and gives it back on deletion.
import { describe, expect, it } from "vitest";
import { condition, dataOf, MemoryWorld } from "../../test/support/memory-world.js";
import { createLogger } from "../../src/observability/index.js";
import { TerminalError } from "../../src/reconcile/index.js";
import { ServerReconciler } from "./reconciler.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });

function setup(count = 2) {
  const world = new MemoryWorld();
  world.addDatacenter("dc1");
  const names = world.addServers({
    datacenterId: "dc1",
    machineClass: "m1-large",
    count,
    namePrefix: "osl-rack1",
  });
  const reconciler = new ServerReconciler(world.deps());
  const pass = (...ids: string[]) =>
    reconciler.reconcileMany(
      ids.map((id) => `server:${id}`),
      log,
    );
  return { world, names, pass };
}

const spec = { machineClass: "m1-large", image: "debian-12" };

describe("ServerReconciler", () => {
  it("reserves a server of the class, has Maskin provision it, and reports its address", async () => {
    const s = setup();
    const { resource, task } = s.world.request("server", spec);
    await s.pass(resource.id);

    const [held] = s.world.holdings(resource.id).servers;
    expect(held).toMatchObject({ name: "osl-rack1-000", machineClass: "m1-large" });
    const provision = s.world.lastCommand(resource.id);
    expect(provision.subject).toBe("dv.maskin.cmd.provision");
    expect(dataOf(provision)).toMatchObject({
      resource_kind: "server",
      task_id: task.id,
      step: "main",
      server_id: held?.id,
      server_name: "osl-rack1-000",
      machine_class: "m1-large",
      image: "debian-12",
    });
    const pending = s.world.resource(resource.id);
    expect(condition(pending, "Reconciling")?.reason).toBe("Provisioning");
    expect(pending?.status).toMatchObject({
      serverId: held?.id,
      serverName: "osl-rack1-000",
      machineClass: "m1-large",
      address: null,
    });
    expect(s.world.task(task.id).state).toBe("queued");

    s.world.complete(provision.id, { server_id: held?.id, address: "10.10.0.21" });
    await s.pass(resource.id);
    const ready = s.world.resource(resource.id);
    expect(condition(ready, "Ready")?.status).toBe("True");
    expect(ready?.status.address).toBe("10.10.0.21");
    expect(ready?.observedGeneration).toBe(1);
    expect(s.world.task(task.id).state).toBe("succeeded");
  });

  it("stalls InsufficientCapacity for good when no server of the class is free", async () => {
    const s = setup(1);
    const first = s.world.request("server", spec);
    const second = s.world.request("server", spec);
    const other = s.world.request("server", { machineClass: "gpu-xl", image: "debian-12" });
    const settled = await s.pass(first.resource.id, second.resource.id, other.resource.id);
    expect(settled.get(`server:${first.resource.id}`)?.ok).toBe(true);
    for (const change of [second, other]) {
      expect(settled.get(`server:${change.resource.id}`)).toEqual({
        ok: false,
        error: expect.any(TerminalError),
      });
      expect(condition(s.world.resource(change.resource.id), "Stalled")).toMatchObject({
        reason: "InsufficientCapacity",
        message: expect.stringContaining("server pool"),
      });
      expect(s.world.task(change.task.id).state).toBe("failed");
      expect(s.world.commandsFor(change.resource.id)).toEqual([]);
    }
  });

  it("stalls MainFailed when Maskin cannot provision it, keeping the server for a replay", async () => {
    const s = setup();
    const { resource, task } = s.world.request("server", spec);
    await s.pass(resource.id);
    s.world.deadLetter(s.world.lastCommand(resource.id).id, "image debian-12 not found");
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      reason: "MainFailed",
      message: expect.stringContaining("image debian-12 not found"),
    });
    expect(s.world.task(task.id)).toMatchObject({
      state: "failed",
      reason: "image debian-12 not found",
    });
    expect(s.world.holdings(resource.id).servers).toHaveLength(1);
  });

  it("provisions a new image on the same server when the spec changes", async () => {
    const s = setup();
    const { resource } = s.world.request("server", spec);
    await s.pass(resource.id);
    s.world.complete(s.world.lastCommand(resource.id).id, { address: "10.10.0.21" });
    await s.pass(resource.id);
    const update = s.world.change(resource.id, { ...spec, image: "debian-13" });
    await s.pass(resource.id);
    const again = s.world.lastCommand(resource.id);
    expect(dataOf(again)).toMatchObject({
      generation: 2,
      task_id: update.task.id,
      server_name: "osl-rack1-000",
      image: "debian-13",
    });
    expect(s.world.holdings(resource.id).servers.map((v) => v.name)).toEqual(["osl-rack1-000"]);
    s.world.complete(again.id, { address: "10.10.0.21" });
    await s.pass(resource.id);
    expect(s.world.resource(resource.id)?.observedGeneration).toBe(2);
    expect(s.world.task(update.task.id).state).toBe("succeeded");
  });

  it("deprovisions a deleted server, then gives it back to the pool", async () => {
    const s = setup(1);
    const { resource } = s.world.request("server", spec);
    await s.pass(resource.id);
    s.world.complete(s.world.lastCommand(resource.id).id, { address: "10.10.0.21" });
    await s.pass(resource.id);
    const serverId = s.world.holdings(resource.id).servers[0]?.id;

    const deletion = s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    const deprovision = s.world.lastCommand(resource.id);
    expect(deprovision.subject).toBe("dv.maskin.cmd.deprovision");
    expect(dataOf(deprovision)).toMatchObject({ server_id: serverId, task_id: deletion.task.id });
    expect(s.world.holdings(resource.id).servers).toHaveLength(1);

    s.world.complete(deprovision.id, { server_id: serverId });
    await s.pass(resource.id);
    expect(s.world.resource(resource.id)).toBeUndefined();
    expect(s.world.task(deletion.task.id).state).toBe("succeeded");
    const next = s.world.request("server", spec);
    await s.pass(next.resource.id);
    expect(s.world.holdings(next.resource.id).servers[0]?.id).toBe(serverId);
  });

  it("fails only the key whose pass throws; its batch-mates go through", async () => {
    const s = setup(3);
    const [a, b, c] = [1, 2, 3].map(() => s.world.request("server", spec)) as [
      ReturnType<typeof s.world.request>,
      ReturnType<typeof s.world.request>,
      ReturnType<typeof s.world.request>,
    ];
    const broken = new Error("the inventory answered nonsense");
    s.world.inject("reserveServers", b.resource.id, broken);
    const settled = await s.pass(a.resource.id, b.resource.id, c.resource.id);
    expect(settled.get(`server:${b.resource.id}`)).toEqual({ ok: false, error: broken });
    expect(s.world.resource(b.resource.id)?.status).toEqual({});
    expect(s.world.task(b.task.id).state).toBe("created");
    for (const ok of [a, c]) {
      expect(settled.get(`server:${ok.resource.id}`)?.ok).toBe(true);
      expect(condition(s.world.resource(ok.resource.id), "Reconciling")?.reason).toBe(
        "Provisioning",
      );
      expect(s.world.commandsFor(ok.resource.id)).toHaveLength(1);
    }
    // One unit of work for the whole batch.
    expect(s.world.commits).toBe(1);

    s.world.clearFaults();
    await s.pass(b.resource.id);
    expect(s.world.commandsFor(b.resource.id)).toHaveLength(1);
  });
});
