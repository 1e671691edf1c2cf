// The network reconciler on the in-memory world (no PostgreSQL): what a tenant sees of a network
// — its status, its task — as Nett answers its commands, fails them, or reports drift.
import { describe, expect, it } from "vitest";
import { condition, dataOf, MemoryWorld } from "../../test/support/memory-world.js";
import { createLogger } from "../../src/observability/index.js";
import { TerminalError } from "../../src/reconcile/index.js";
import { NetworkReconciler } from "./reconciler.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const OBSERVE_EVERY_MS = 300_000;

function setup(options: { vlans?: { first: number; last: number } } = {}) {
  const world = new MemoryWorld();
  world.addDatacenter("dc1");
  world.addNetworkPool({
    name: "tenant",
    datacenterId: "dc1",
    isDefault: true,
    vlans: [options.vlans ?? { first: 100, last: 109 }],
    prefixes: ["10.0.0.0/24"],
  });
  const deps = world.deps({ redispatchAfterMs: 60_000 });
  const reconciler = new NetworkReconciler(deps, OBSERVE_EVERY_MS);
  const pass = (...ids: string[]) =>
    reconciler.reconcileMany(
      ids.map((id) => `network:${id}`),
      log,
    );
  return { world, deps, pass };
}

/** A network taken to Ready: created, applied by Nett, reported. */
async function readyNetwork(s: ReturnType<typeof setup>, spec = { prefixLength: 26 }) {
  const change = s.world.request("network", spec);
  await s.pass(change.resource.id);
  s.world.complete(s.world.lastCommand(change.resource.id).id, { gateway: "10.0.0.1" });
  await s.pass(change.resource.id);
  expect(condition(s.world.resource(change.resource.id), "Ready")?.status).toBe("True");
  return change;
}

describe("NetworkReconciler", () => {
  it("reserves a VLAN and a prefix for a new network, sends it to Nett and queues its task", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 26 });
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)).toEqual({
      ok: true,
      result: { requeueAfterMs: expect.any(Number) },
    });

    const sent = s.world.commandsFor(resource.id);
    expect(sent).toHaveLength(1);
    const grant = s.deps.grants.get(s.world.shardOf(resource.id));
    expect(sent[0]).toMatchObject({
      subject: "dv.nett.cmd.apply",
      again: false,
      headers: { "dv-fencing-token": `${grant?.shard}:${grant?.token}` },
      envelope: {
        correlation_id: task.correlationId,
        tenant_id: resource.tenantId,
        datacenter_id: "dc1",
      },
    });
    expect(dataOf(sent[0]!)).toMatchObject({
      resource_kind: "network",
      resource_id: resource.id,
      generation: 1,
      task_id: task.id,
      step: "main",
      vlan_id: 100,
      cidr: "10.0.0.0/26",
    });

    const r = s.world.resource(resource.id);
    expect(r?.status).toMatchObject({
      networkPool: "tenant",
      vlanId: 100,
      cidr: "10.0.0.0/26",
      gateway: null,
    });
    expect(condition(r, "Ready")).toMatchObject({ status: "False", reason: "Provisioning" });
    expect(condition(r, "Reconciling")).toMatchObject({
      status: "True",
      reason: "Provisioning",
      message: "waiting for main",
    });
    expect(r?.observedGeneration).toBe(0);
    expect(s.world.task(task.id).state).toBe("queued");
    expect(s.world.holdings(resource.id)).toMatchObject({
      vlans: [{ vlanId: 100, networkPool: "tenant" }],
      prefixes: [{ prefix: "10.0.0.0/26", networkPool: "tenant" }],
    });

    // Nothing new: no second command, no write.
    await s.pass(resource.id);
    expect(s.world.commandsFor(resource.id)).toHaveLength(1);
    expect(s.world.resource(resource.id)?.version).toBe(r?.version);
  });

  it("reports Ready with the gateway once Nett applied it, and the task succeeds", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 26 });
    await s.pass(resource.id);
    s.world.complete(s.world.lastCommand(resource.id).id, {
      vlan_id: 100,
      cidr: "10.0.0.0/26",
      gateway: "10.0.0.1",
    });
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)).toEqual({ ok: true, result: undefined });

    const r = s.world.resource(resource.id);
    expect(condition(r, "Ready")).toMatchObject({
      status: "True",
      message: "generation 1 is in place",
    });
    expect(condition(r, "Reconciling")).toBeUndefined();
    expect(condition(r, "Stalled")).toBeUndefined();
    expect(r?.status).toMatchObject({ vlanId: 100, cidr: "10.0.0.0/26", gateway: "10.0.0.1" });
    expect(r?.observedGeneration).toBe(1);
    expect(s.world.task(task.id)).toMatchObject({ state: "succeeded", progressPercent: 100 });
    expect(s.world.history(task.id).map((e) => e.verb)).toEqual([
      "created",
      "queued",
      "started",
      "succeeded",
    ]);
    // Ready, it asks Nett what is really configured.
    const observe = s.world.lastCommand(resource.id);
    expect(observe.subject).toBe("dv.nett.cmd.observe");
    expect(dataOf(observe)).toMatchObject({ step: "main", task_id: null });
  });

  it("stalls on a failed command with its reason, fails the task, keeps what it holds; a replay finishes it", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 28 });
    await s.pass(resource.id);
    const letter = s.world.deadLetter(s.world.lastCommand(resource.id).id, "port channel down");
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)?.ok).toBe(true);

    const stalled = s.world.resource(resource.id);
    expect(condition(stalled, "Stalled")).toMatchObject({
      status: "True",
      reason: "MainFailed",
      message: expect.stringContaining("port channel down"),
    });
    expect(condition(stalled, "Stalled")?.message).toContain("replay its dead letter");
    expect(condition(stalled, "Ready")).toMatchObject({ status: "False", reason: "MainFailed" });
    expect(stalled?.observedGeneration).toBe(1);
    expect(s.world.task(task.id)).toMatchObject({ state: "failed", reason: "port channel down" });
    expect(s.world.holdings(resource.id).vlans).toEqual([{ vlanId: 100, networkPool: "tenant" }]);

    // The operator fixes the cause and replays: the resource follows the new command.
    const replayed = s.world.replay(letter);
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Reconciling")?.reason).toBe("Provisioning");
    s.world.complete(replayed, { gateway: "10.0.0.1" });
    await s.pass(resource.id);
    const healed = s.world.resource(resource.id);
    expect(condition(healed, "Ready")?.status).toBe("True");
    expect(condition(healed, "Stalled")).toBeUndefined();
    expect(healed?.status).toMatchObject({ vlanId: 100, gateway: "10.0.0.1" });
    expect(s.world.task(task.id).state).toBe("succeeded");
  });

  it("stalls InsufficientCapacity for good when the pool is exhausted, holding nothing", async () => {
    const s = setup({ vlans: { first: 100, last: 101 } });
    const a = s.world.request("network", { prefixLength: 28 });
    const b = s.world.request("network", { prefixLength: 28 });
    const c = s.world.request("network", { prefixLength: 28 });
    const settled = await s.pass(a.resource.id, b.resource.id, c.resource.id);
    expect(settled.get(`network:${a.resource.id}`)?.ok).toBe(true);
    expect(settled.get(`network:${b.resource.id}`)?.ok).toBe(true);
    const refused = settled.get(`network:${c.resource.id}`);
    expect(refused).toEqual({ ok: false, error: expect.any(TerminalError) });

    const r = s.world.resource(c.resource.id);
    expect(condition(r, "Stalled")).toMatchObject({
      status: "True",
      reason: "InsufficientCapacity",
      message: expect.stringContaining('vlan pool "tenant" is exhausted'),
    });
    expect(r?.observedGeneration).toBe(1);
    expect(s.world.task(c.task.id).state).toBe("failed");
    expect(s.world.commandsFor(c.resource.id)).toEqual([]);
    expect(s.world.holdings(c.resource.id)).toEqual({
      vlans: [],
      prefixes: [],
      servers: [],
      capacity: [],
    });
  });

  it("gives back the VLAN it took when the prefix cannot be had", async () => {
    const s = setup();
    const { resource } = s.world.request("network", { prefixLength: 23 });
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)?.ok).toBe(false);
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      reason: "InsufficientCapacity",
      message: expect.stringContaining("/23"),
    });
    expect(s.world.holdings(resource.id).vlans).toEqual([]);
    // The VLAN is free for the next network.
    const next = s.world.request("network", { prefixLength: 28 });
    await s.pass(next.resource.id);
    expect(s.world.resource(next.resource.id)?.status.vlanId).toBe(100);
  });

  it("says PoolUnavailable for a pool that does not exist or is Stalled", async () => {
    const s = setup();
    const missing = s.world.request("network", { prefixLength: 28, networkPool: "elsewhere" });
    s.world.addNetworkPool({ name: "frozen", datacenterId: "dc1", vlans: [], prefixes: [] });
    s.world.stallPool("frozen", "Overlap", "10.0.0.0/8 overlaps tenant");
    const frozen = s.world.request("network", { prefixLength: 28, networkPool: "frozen" });
    await s.pass(missing.resource.id, frozen.resource.id);
    expect(condition(s.world.resource(missing.resource.id), "Stalled")).toMatchObject({
      reason: "PoolUnavailable",
      message: expect.stringContaining(
        'network pool "elsewhere" does not exist in datacenter "dc1"',
      ),
    });
    expect(condition(s.world.resource(frozen.resource.id), "Stalled")).toMatchObject({
      reason: "PoolUnavailable",
      message: 'network pool "frozen" is Stalled (Overlap): 10.0.0.0/8 overlaps tenant',
    });
  });

  it("applies a new size as a new command, then releases the old prefix once Ready", async () => {
    const s = setup();
    const { resource } = await readyNetwork(s);
    const before = s.world.commandsFor(resource.id).length;
    const update = s.world.change(resource.id, { prefixLength: 25 });
    await s.pass(resource.id);

    const apply = s.world.commandsFor(resource.id).slice(before);
    expect(apply).toHaveLength(1);
    expect(apply[0]?.subject).toBe("dv.nett.cmd.apply");
    expect(dataOf(apply[0]!)).toMatchObject({
      generation: 2,
      task_id: update.task.id,
      vlan_id: 100,
      cidr: "10.0.0.128/25",
    });
    const pending = s.world.resource(resource.id);
    expect(condition(pending, "Ready")).toMatchObject({ status: "False", reason: "Provisioning" });
    expect(pending?.observedGeneration).toBe(1);
    expect(
      s.world
        .holdings(resource.id)
        .prefixes.map((p) => p.prefix)
        .sort(),
    ).toEqual(["10.0.0.0/26", "10.0.0.128/25"]);

    s.world.complete(apply[0]!.id, { gateway: "10.0.0.129" });
    await s.pass(resource.id);
    const resized = s.world.resource(resource.id);
    expect(condition(resized, "Ready")?.status).toBe("True");
    expect(resized?.observedGeneration).toBe(2);
    expect(resized?.status).toMatchObject({ cidr: "10.0.0.128/25", gateway: "10.0.0.129" });
    expect(s.world.task(update.task.id).state).toBe("succeeded");
    expect(s.world.holdings(resource.id).prefixes).toEqual([
      { prefix: "10.0.0.128/25", networkPool: "tenant" },
    ]);
  });

  it("looks at what Nett really has now and then, and applies it again when it drifted", async () => {
    const s = setup();
    const { resource } = await readyNetwork(s);
    const first = s.world.lastCommand(resource.id);
    expect(first.subject).toBe("dv.nett.cmd.observe");

    // As applied: nothing to do, and not again before the interval is up.
    s.world.complete(first.id, { present: true, vlan_id: 100, cidr: "10.0.0.0/26" });
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Ready")?.status).toBe("True");
    expect(s.world.lastCommand(resource.id).id).toBe(first.id);
    s.world.advance(OBSERVE_EVERY_MS + 1_000);
    await s.pass(resource.id);
    const second = s.world.lastCommand(resource.id);
    expect(second.subject).toBe("dv.nett.cmd.observe");
    expect(second.id).not.toBe(first.id);

    // Someone changed the switch: drift.
    s.world.complete(second.id, { present: true, vlan_id: 4094, cidr: "192.0.2.0/28" });
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)).toEqual({
      ok: true,
      result: { requeueAfterMs: expect.any(Number) },
    });
    const drifted = s.world.resource(resource.id);
    expect(condition(drifted, "Ready")).toMatchObject({ status: "False", reason: "DriftDetected" });
    expect(condition(drifted, "Reconciling")).toMatchObject({
      status: "True",
      reason: "DriftDetected",
      message: expect.stringContaining("vlan 4094 cidr 192.0.2.0/28"),
    });

    await s.pass(resource.id);
    const again = s.world.lastCommand(resource.id);
    expect(again.subject).toBe("dv.nett.cmd.apply");
    expect(dataOf(again)).toMatchObject({ vlan_id: 100, cidr: "10.0.0.0/26", generation: 1 });
    expect(
      s.world.commandsFor(resource.id).filter((c) => c.subject === "dv.nett.cmd.apply"),
    ).toHaveLength(2);
    s.world.complete(again.id, { gateway: "10.0.0.1" });
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Ready")?.status).toBe("True");
  });

  it("tears a deleted network down first, then releases what it held and disappears", async () => {
    const s = setup();
    const { resource } = await readyNetwork(s);
    const deletion = s.world.requestDeletion(resource.id);
    // The observation Ready sent is still out; it builds nothing, so nobody waits for it.
    await s.pass(resource.id);

    const teardown = s.world.lastCommand(resource.id);
    expect(teardown.subject).toBe("dv.nett.cmd.teardown");
    expect(dataOf(teardown)).toMatchObject({
      step: "main",
      generation: 2,
      task_id: deletion.task.id,
    });
    expect(condition(s.world.resource(resource.id), "Reconciling")).toMatchObject({
      reason: "Deleting",
      message: "tearing down",
    });
    expect(s.world.holdings(resource.id).vlans).toHaveLength(1);
    expect(s.world.task(deletion.task.id).state).toBe("queued");

    s.world.complete(teardown.id);
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)).toEqual({ ok: true, result: undefined });
    expect(s.world.resource(resource.id)).toBeUndefined();
    expect(s.world.holdings(resource.id)).toEqual({
      vlans: [],
      prefixes: [],
      servers: [],
      capacity: [],
    });
    expect(s.world.task(deletion.task.id).state).toBe("succeeded");
    // Its VLAN and the whole /24 are free again.
    const next = s.world.request("network", { prefixLength: 24 });
    await s.pass(next.resource.id);
    expect(s.world.resource(next.resource.id)?.status).toMatchObject({
      vlanId: 100,
      cidr: "10.0.0.0/24",
    });
  });

  it("lets a command in flight settle before tearing down, and cancels the create task", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 28 });
    await s.pass(resource.id);
    const apply = s.world.lastCommand(resource.id);
    const deletion = s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    expect(s.world.lastCommand(resource.id).id).toBe(apply.id);
    expect(condition(s.world.resource(resource.id), "Reconciling")).toMatchObject({
      reason: "Deleting",
      message: "waiting for main before tearing down",
    });

    s.world.complete(apply.id, { gateway: "10.0.0.1" });
    await s.pass(resource.id);
    const teardown = s.world.lastCommand(resource.id);
    expect(teardown.subject).toBe("dv.nett.cmd.teardown");
    s.world.complete(teardown.id);
    await s.pass(resource.id);
    expect(s.world.resource(resource.id)).toBeUndefined();
    expect(s.world.task(task.id)).toMatchObject({
      state: "cancelled",
      reason: "the resource was deleted",
    });
    expect(s.world.task(deletion.task.id).state).toBe("succeeded");
  });

  it("tears down at once a network whose command its worker skipped (the task was cancelled first)", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 28 });
    await s.pass(resource.id);
    const apply = s.world.lastCommand(resource.id);
    s.world.transition(task.id, "cancelled", "not needed after all", "tenant");
    s.world.skip(apply.id);
    s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    // Nothing is in flight any more: the teardown goes, it does not wait for the skipped apply.
    const teardown = s.world.lastCommand(resource.id);
    expect(teardown.subject).toBe("dv.nett.cmd.teardown");
    s.world.complete(teardown.id);
    await s.pass(resource.id);
    expect(s.world.resource(resource.id)).toBeUndefined();
  });

  it("does not wait for an observation before tearing down", async () => {
    const s = setup();
    const { resource } = await readyNetwork(s);
    const observe = s.world.lastCommand(resource.id);
    expect(observe.subject).toBe("dv.nett.cmd.observe");
    s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    expect(s.world.lastCommand(resource.id).subject).toBe("dv.nett.cmd.teardown");
  });

  it("gives back the VLAN of the pool it left once Ready in the new one", async () => {
    const s = setup();
    s.world.addNetworkPool({
      name: "other",
      datacenterId: "dc1",
      isDefault: false,
      vlans: [{ first: 200, last: 209 }],
      prefixes: ["10.1.0.0/24"],
    });
    const { resource } = await readyNetwork(s);
    s.world.change(resource.id, { prefixLength: 26, networkPool: "other" });
    await s.pass(resource.id);
    expect(
      s.world
        .holdings(resource.id)
        .vlans.map((v) => v.networkPool)
        .sort(),
    ).toEqual(["other", "tenant"]);
    s.world.complete(s.world.lastCommand(resource.id).id, { gateway: "10.1.0.1" });
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Ready")?.status).toBe("True");
    expect(s.world.holdings(resource.id)).toMatchObject({
      vlans: [{ vlanId: 200, networkPool: "other" }],
      prefixes: [{ prefix: "10.1.0.0/26", networkPool: "other" }],
    });
  });

  it("stalls for good on a spec its schema refuses, naming the field", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 99 });
    const settled = await s.pass(resource.id);
    const result = settled.get(`network:${resource.id}`);
    expect(result?.ok).toBe(false);
    expect(result && !result.ok && result.error).toBeInstanceOf(TerminalError);
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      status: "True",
      reason: "InvalidSpec",
      message: expect.stringMatching(/^spec\.prefixLength: /),
    });
    expect(s.world.commandsFor(resource.id)).toEqual([]);
    expect(s.world.task(task.id).state).toBe("failed");
  });

  it("stops at Cancelled when the generation's task was cancelled, until the spec changes", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 28 });
    s.world.transition(task.id, "cancelled", "not needed after all", "tenant");
    const settled = await s.pass(resource.id);
    expect(settled.get(`network:${resource.id}`)?.ok).toBe(true);
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      status: "True",
      reason: "Cancelled",
      message: expect.stringContaining("generation 1 was cancelled"),
    });
    expect(s.world.commandsFor(resource.id)).toEqual([]);

    const update = s.world.change(resource.id, { prefixLength: 27 });
    await s.pass(resource.id);
    expect(dataOf(s.world.lastCommand(resource.id))).toMatchObject({
      generation: 2,
      task_id: update.task.id,
      cidr: "10.0.0.0/27",
    });
    expect(condition(s.world.resource(resource.id), "Stalled")).toBeUndefined();
  });

  it("sends a command left unanswered again under the same id", async () => {
    const s = setup();
    const { resource } = s.world.request("network", { prefixLength: 28 });
    await s.pass(resource.id);
    const apply = s.world.lastCommand(resource.id);
    s.world.advance(30_000);
    await s.pass(resource.id);
    expect(s.world.commandsFor(resource.id)).toHaveLength(1);
    s.world.advance(31_000);
    await s.pass(resource.id);
    const sent = s.world.commandsFor(resource.id);
    expect(sent).toHaveLength(2);
    expect(sent[1]).toMatchObject({ id: apply.id, again: true, subject: apply.subject });
  });

  it("says Undelivered while its command cannot reach the site, on the resource and its task", async () => {
    const s = setup();
    const { resource, task } = s.world.request("network", { prefixLength: 28 });
    await s.pass(resource.id);
    s.world.failDelivery(s.world.lastCommand(resource.id).id, "no responders: dc1 unreachable");
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Reconciling")).toMatchObject({
      reason: "Undelivered",
      message: "waiting for main: no responders: dc1 unreachable",
    });
    expect(s.world.task(task.id)).toMatchObject({
      state: "queued",
      progressMessage: "waiting: no responders: dc1 unreachable",
    });
  });

  it("writes nothing for a key whose shard another replica took over", async () => {
    const s = setup();
    const mine = s.world.request("network", { prefixLength: 28 });
    let theirs = s.world.request("network", { prefixLength: 28 });
    while (s.world.shardOf(theirs.resource.id) === s.world.shardOf(mine.resource.id))
      theirs = s.world.request("network", { prefixLength: 28 });
    s.world.grant(s.world.shardOf(theirs.resource.id), "replica-2");

    const settled = await s.pass(mine.resource.id, theirs.resource.id);
    expect(settled.get(`network:${theirs.resource.id}`)).toEqual({ ok: true, result: undefined });
    expect(s.world.resource(theirs.resource.id)).toMatchObject({
      status: {},
      version: theirs.resource.version,
    });
    expect(s.world.commandsFor(theirs.resource.id)).toEqual([]);
    expect(s.world.holdings(theirs.resource.id).vlans).toEqual([]);
    expect(s.world.task(theirs.task.id).state).toBe("created");
    // Its batch-mate went through.
    expect(s.world.commandsFor(mine.resource.id)).toHaveLength(1);
  });
});
