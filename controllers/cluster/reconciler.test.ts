// The cluster reconciler on the in-memory world (no PostgreSQL): a saga across Nett, Maskin and
// Plattform — network, then servers, then the bootstrap — undone in reverse when a step fails,
// with everything it held released.
import { describe, expect, it } from "vitest";
import { type Change, condition, dataOf, MemoryWorld } from "../../test/support/memory-world.js";
import { createLogger } from "../../src/observability/index.js";
import { TerminalError } from "../../src/reconcile/index.js";
import { ClusterReconciler } from "./reconciler.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const NOTHING = { vlans: [], prefixes: [], servers: [], capacity: [] };

function setup(servers = 3) {
  const world = new MemoryWorld();
  world.addDatacenter("dc1");
  world.addNetworkPool({
    name: "tenant",
    datacenterId: "dc1",
    isDefault: true,
    vlans: [{ first: 100, last: 109 }],
    prefixes: ["10.0.0.0/24"],
  });
  world.addServers({ datacenterId: "dc1", machineClass: "m1", count: servers, namePrefix: "k" });
  const reconciler = new ClusterReconciler(world.deps());
  const pass = (...ids: string[]) =>
    reconciler.reconcileMany(
      ids.map((id) => `cluster:${id}`),
      log,
    );
  return { world, pass };
}

const spec = { version: "1.31", machineClass: "m1", workers: 1, prefixLength: 26 };

/** The commands of a cluster nobody answered, as `subject step`. */
function outstanding(world: MemoryWorld, id: string): string[] {
  return world
    .unanswered(id)
    .map((c) => `${c.subject.replace(/^dv\./, "")} ${String(dataOf(c).step)}`);
}

/** Answers every outstanding command of a cluster as done. */
function completeAll(world: MemoryWorld, id: string, result: Record<string, unknown> = {}): void {
  for (const c of world.unanswered(id)) world.complete(c.id, result);
}

/** A cluster whose network and servers are done, its bootstrap sent. */
async function upToBootstrap(s: ReturnType<typeof setup>): Promise<Change> {
  const change = s.world.request("cluster", spec);
  const id = change.resource.id;
  await s.pass(id);
  completeAll(s.world, id, { gateway: "10.0.0.1" });
  await s.pass(id);
  completeAll(s.world, id, { address: "10.0.0.10" });
  await s.pass(id);
  expect(outstanding(s.world, id)).toEqual(["plattform.cmd.bootstrap bootstrap"]);
  return change;
}

describe("ClusterReconciler", () => {
  it("runs network, servers and bootstrap in order, then reports Ready with its endpoint", async () => {
    const s = setup();
    const { resource, task } = s.world.request("cluster", spec);
    const id = resource.id;
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["nett.cmd.apply network"]);
    expect(dataOf(s.world.lastCommand(id))).toMatchObject({
      vlan_id: 100,
      cidr: "10.0.0.0/26",
      task_id: task.id,
    });
    expect(s.world.holdings(id)).toMatchObject({
      vlans: [{ vlanId: 100 }],
      prefixes: [{ prefix: "10.0.0.0/26" }],
      servers: [{ name: "k-000" }, { name: "k-001" }],
    });
    expect(s.world.task(task.id).state).toBe("queued");

    completeAll(s.world, id, { gateway: "10.0.0.1" });
    await s.pass(id);
    // The servers of a phase go out together.
    expect(outstanding(s.world, id)).toEqual([
      "maskin.cmd.provision server:k-000",
      "maskin.cmd.provision server:k-001",
    ]);
    expect(condition(s.world.resource(id), "Reconciling")?.message).toBe(
      "waiting for server:k-000, server:k-001",
    );

    completeAll(s.world, id, { address: "10.0.0.10" });
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["plattform.cmd.bootstrap bootstrap"]);
    expect(dataOf(s.world.lastCommand(id))).toMatchObject({
      version: "1.31",
      servers: ["k-000", "k-001"],
      cidr: "10.0.0.0/26",
    });

    completeAll(s.world, id, { endpoint: "https://k8s.dc1.example:6443" });
    await s.pass(id);
    const ready = s.world.resource(id);
    expect(condition(ready, "Ready")?.status).toBe("True");
    expect(ready?.observedGeneration).toBe(1);
    expect(ready?.status).toMatchObject({
      vlanId: 100,
      cidr: "10.0.0.0/26",
      servers: [
        { id: expect.any(String), name: "k-000" },
        { id: expect.any(String), name: "k-001" },
      ],
      endpoint: "https://k8s.dc1.example:6443",
    });
    expect(s.world.task(task.id).state).toBe("succeeded");
  });

  it("undoes the steps done in reverse when the bootstrap fails, then releases everything", async () => {
    const s = setup();
    const { resource, task } = await upToBootstrap(s);
    const id = resource.id;
    s.world.deadLetter(s.world.lastCommand(id).id, "etcd did not form a quorum");

    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["maskin.cmd.deprovision server:k-001"]);
    expect(condition(s.world.resource(id), "Reconciling")).toMatchObject({
      reason: "Compensating",
      message: expect.stringContaining("bootstrap failed (etcd did not form a quorum)"),
    });
    expect(s.world.holdings(id).servers).toHaveLength(2);

    completeAll(s.world, id);
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["maskin.cmd.deprovision server:k-000"]);
    completeAll(s.world, id);
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["nett.cmd.teardown network"]);
    completeAll(s.world, id);
    const settled = await s.pass(id);
    expect(settled.get(`cluster:${id}`)?.ok).toBe(true);

    const rolledBack = s.world.resource(id);
    expect(condition(rolledBack, "Stalled")).toMatchObject({
      status: "True",
      reason: "BootstrapFailed",
      message: "etcd did not form a quorum",
    });
    expect(rolledBack?.status.rolledBack).toBe(1);
    expect(rolledBack?.observedGeneration).toBe(1);
    expect(s.world.holdings(id)).toEqual(NOTHING);
    expect(s.world.task(task.id)).toMatchObject({
      state: "failed",
      reason: "etcd did not form a quorum",
    });
    const undo = s.world
      .commandsFor(id)
      .map((c) => String(dataOf(c).step))
      .slice(-3);
    expect(undo).toEqual(["server:k-001", "server:k-000", "network"]);

    // Rolled back, it stays so: no command, no write, until the spec changes.
    const sent = s.world.commandsFor(id).length;
    const version = rolledBack?.version;
    await s.pass(id);
    expect(s.world.commandsFor(id)).toHaveLength(sent);
    expect(s.world.resource(id)?.version).toBe(version);
  });

  it("releases at once when the first step fails: nothing to undo", async () => {
    const s = setup();
    const { resource, task } = s.world.request("cluster", spec);
    await s.pass(resource.id);
    s.world.deadLetter(s.world.lastCommand(resource.id).id, "VLAN 100 is in use on the switch");
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Stalled")?.reason).toBe("NetworkFailed");
    expect(s.world.holdings(resource.id)).toEqual(NOTHING);
    expect(s.world.task(task.id).state).toBe("failed");
    expect(s.world.commandsFor(resource.id)).toHaveLength(1);
  });

  it("stalls InsufficientCapacity holding nothing when its servers cannot all be had", async () => {
    const s = setup(2);
    const { resource, task } = s.world.request("cluster", { ...spec, workers: 2 });
    const settled = await s.pass(resource.id);
    expect(settled.get(`cluster:${resource.id}`)).toEqual({
      ok: false,
      error: expect.any(TerminalError),
    });
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      reason: "InsufficientCapacity",
      message: expect.stringContaining("3 free m1 servers needed, 2 available"),
    });
    // The VLAN and prefix it reserved first went back with the refused servers.
    expect(s.world.holdings(resource.id)).toEqual(NOTHING);
    expect(s.world.task(task.id).state).toBe("failed");
  });

  it("tears a deleted cluster down in reverse order, then releases everything", async () => {
    const s = setup();
    const { resource } = await upToBootstrap(s);
    const id = resource.id;
    completeAll(s.world, id, { endpoint: "https://k8s:6443" });
    await s.pass(id);
    expect(condition(s.world.resource(id), "Ready")?.status).toBe("True");

    const deletion = s.world.requestDeletion(id);
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["plattform.cmd.teardown bootstrap"]);
    completeAll(s.world, id);
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual([
      "maskin.cmd.deprovision server:k-000",
      "maskin.cmd.deprovision server:k-001",
    ]);
    completeAll(s.world, id);
    await s.pass(id);
    expect(outstanding(s.world, id)).toEqual(["nett.cmd.teardown network"]);
    expect(s.world.holdings(id).servers).toHaveLength(2);
    completeAll(s.world, id);
    await s.pass(id);
    expect(s.world.resource(id)).toBeUndefined();
    expect(s.world.holdings(id)).toEqual(NOTHING);
    expect(s.world.task(deletion.task.id).state).toBe("succeeded");
  });
});
