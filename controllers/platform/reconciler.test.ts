// The platform reconciler on fakes of its two ports (no PostgreSQL, no cluster): what an operator
// sees on a platform object — its status conditions and finalizer — as the sync accepts it,
// refuses it, or holds its deletion while something uses it.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../src/kernel/index.js";
import { createLogger } from "../../src/observability/index.js";
import { PlatformReconciler } from "./reconciler.js";
import {
  PLATFORM_FINALIZER,
  type PlatformObject,
  platformKey,
  type PlatformSource,
} from "./source.js";
import type { PlatformObjectInput, PlatformSyncPort, SyncResult } from "./sync.js";

const NOW = new Date("2026-03-01T12:00:00.000Z");

/** Objects in memory, as a cluster (finalizers) or a directory (none) holds them. */
class FakeSource implements PlatformSource {
  readonly name;
  readonly objects = new Map<string, PlatformObject>();
  readonly statusWrites: { key: string; status: Record<string, unknown> }[] = [];
  readonly finalizerChanges: { key: string; present: boolean }[] = [];

  constructor(readonly holdsDeletion: boolean) {
    this.name = holdsDeletion ? ("kubernetes" as const) : ("directory" as const);
  }

  put(object: Partial<PlatformObject> & { kind: string; name: string }): PlatformObject {
    const full: PlatformObject = {
      generation: 1,
      spec: {},
      deleting: false,
      finalizers: this.holdsDeletion ? [PLATFORM_FINALIZER] : [],
      status: {},
      ...object,
    };
    this.objects.set(platformKey(full.kind, full.name), full);
    return full;
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  get(kind: string, name: string): PlatformObject | undefined {
    return this.objects.get(platformKey(kind, name));
  }
  keys(): string[] {
    return [...this.objects.keys()];
  }
  async writeStatus(object: PlatformObject, status: Record<string, unknown>): Promise<void> {
    const key = platformKey(object.kind, object.name);
    this.statusWrites.push({ key, status });
    const current = this.objects.get(key);
    if (current) this.objects.set(key, { ...current, status });
  }
  async setFinalizer(object: PlatformObject, present: boolean): Promise<void> {
    const key = platformKey(object.kind, object.name);
    this.finalizerChanges.push({ key, present });
    const current = this.objects.get(key);
    if (!current) return;
    const others = current.finalizers.filter((f) => f !== PLATFORM_FINALIZER);
    this.objects.set(key, {
      ...current,
      finalizers: present ? [...others, PLATFORM_FINALIZER] : others,
    });
  }
}

/** A sync that answers what the test says, and remembers what it was asked. */
class FakeSync implements PlatformSyncPort {
  applyResult: SyncResult = { ok: true, status: {} };
  removeResult: SyncResult = { ok: true, status: {} };
  recordError: Error | undefined;
  readonly applied: PlatformObjectInput[] = [];
  readonly removed: string[] = [];
  readonly recorded: { key: string; status: Record<string, unknown>; generation: number }[] = [];

  async apply(input: PlatformObjectInput): Promise<SyncResult> {
    this.applied.push(input);
    return this.applyResult;
  }
  async remove(kind: string, name: string): Promise<SyncResult> {
    this.removed.push(platformKey(kind, name));
    return this.removeResult;
  }
  async recordStatus(
    kind: string,
    name: string,
    status: Record<string, unknown>,
    observedGeneration: number,
  ): Promise<void> {
    if (this.recordError) throw this.recordError;
    this.recorded.push({ key: platformKey(kind, name), status, generation: observedGeneration });
  }
}

/** A logger whose JSON lines the test reads back. */
function capturedLogger() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean))
        lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const log = createLogger({ level: "debug", service: "test", datacenterId: "dc1", destination });
  return { log, lines };
}

function setup(holdsDeletion = true) {
  const source = new FakeSource(holdsDeletion);
  const sync = new FakeSync();
  const reconciler = new PlatformReconciler(source, sync, () => NOW);
  const { log, lines } = capturedLogger();
  return { source, sync, lines, reconcile: (key: string) => reconciler.reconcile(key, log) };
}

const conditionsOf = (status: Record<string, unknown> | undefined) =>
  (status?.conditions ?? []) as { type: string; status: string; reason: string; message: string }[];

describe("PlatformReconciler", () => {
  it("applies an object and reports Ready with the sync's fields and the generation observed", async () => {
    const s = setup();
    s.source.put({ kind: "Datacenter", name: "osl1", generation: 3, spec: { site: "osl" } });
    s.sync.applyResult = { ok: true, status: { objectStorageGiB: 10 } };
    expect(await s.reconcile("Datacenter/osl1")).toBeUndefined();

    expect(s.sync.applied).toEqual([
      { kind: "Datacenter", name: "osl1", generation: 3, spec: { site: "osl" } },
    ]);
    const status = s.source.get("Datacenter", "osl1")?.status;
    expect(status).toEqual({
      objectStorageGiB: 10,
      observedGeneration: 3,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Ready",
          message: "generation 3 is applied",
          lastTransitionTime: NOW.toISOString(),
          observedGeneration: 3,
        },
      ],
    });
    expect(s.sync.recorded).toEqual([{ key: "Datacenter/osl1", status, generation: 3 }]);

    // Applied again with nothing changed: nothing written.
    expect(await s.reconcile("Datacenter/osl1")).toBeUndefined();
    expect(s.sync.applied).toHaveLength(2);
    expect(s.source.statusWrites).toHaveLength(1);
    expect(s.sync.recorded).toHaveLength(1);
  });

  it("stalls, naming the field, when only a change to the object can help; no retry, one warning", async () => {
    const s = setup();
    s.source.put({
      kind: "NetworkPool",
      name: "tenant",
      generation: 2,
      status: { vlans: { total: 10, free: 9 }, observedGeneration: 1, conditions: [] },
    });
    s.sync.applyResult = {
      ok: false,
      reason: "InvalidSpec",
      message: "spec.vlanRanges.0.start: must be at least 1",
      retry: false,
    };
    expect(await s.reconcile("NetworkPool/tenant")).toBeUndefined();
    const status = s.source.get("NetworkPool", "tenant")?.status;
    // What it reported of the generation it had stays; the conditions say why the new one did not.
    expect(status).toMatchObject({ vlans: { total: 10, free: 9 }, observedGeneration: 2 });
    expect(conditionsOf(status)).toEqual([
      expect.objectContaining({ type: "Ready", status: "False", reason: "InvalidSpec" }),
      expect.objectContaining({
        type: "Stalled",
        status: "True",
        reason: "InvalidSpec",
        message: "spec.vlanRanges.0.start: must be at least 1",
      }),
    ]);
    // Looked at again (its own status update comes back through the watch): not logged again.
    expect(await s.reconcile("NetworkPool/tenant")).toBeUndefined();
    expect(s.lines).toEqual([
      expect.objectContaining({
        level: "warn",
        phase: "stalled",
        reason: "InvalidSpec",
        msg: "spec.vlanRanges.0.start: must be at least 1",
      }),
    ]);
    expect(s.lines[0]).not.toHaveProperty("err");
  });

  it("says Reconciling and looks again, backing off, when the refusal may pass (a datacenter not there yet)", async () => {
    const s = setup();
    s.source.put({ kind: "ServerPool", name: "rack1" });
    s.sync.applyResult = {
      ok: false,
      reason: "DependencyMissing",
      message: "Datacenter osl1 not found",
      retry: true,
    };
    const delays: (number | undefined)[] = [];
    for (let i = 0; i < 7; i++)
      delays.push((await s.reconcile("ServerPool/rack1"))?.requeueAfterMs);
    expect(delays).toEqual([250, 500, 1_000, 2_000, 4_000, 5_000, 5_000]);
    expect(conditionsOf(s.source.get("ServerPool", "rack1")?.status)).toEqual([
      expect.objectContaining({ type: "Ready", status: "False", reason: "DependencyMissing" }),
      expect.objectContaining({ type: "Reconciling", status: "True", reason: "DependencyMissing" }),
    ]);
    // Expected, so logged once, at info, without a stack.
    expect(s.lines).toEqual([
      expect.objectContaining({
        level: "info",
        phase: "reconciling",
        reason: "DependencyMissing",
        msg: "Datacenter osl1 not found",
      }),
    ]);
    expect(s.lines[0]).not.toHaveProperty("err");

    // Once the datacenter is there: Ready, said once; a later wait backs off from the start.
    s.sync.applyResult = { ok: true, status: {} };
    expect(await s.reconcile("ServerPool/rack1")).toBeUndefined();
    expect(s.lines.slice(1)).toEqual([
      expect.objectContaining({ level: "info", msg: "generation 1 is applied" }),
    ]);
    s.sync.applyResult = { ok: false, reason: "InUse", message: "VLAN range in use", retry: true };
    expect(await s.reconcile("ServerPool/rack1")).toEqual({ requeueAfterMs: 250 });
    expect(s.lines.slice(2)).toEqual([
      expect.objectContaining({ level: "info", reason: "InUse", msg: "VLAN range in use" }),
    ]);
  });

  it("in a cluster, puts its finalizer on first and applies on the next pass", async () => {
    const s = setup(true);
    s.source.put({ kind: "NetworkPool", name: "tenant", finalizers: [] });
    expect(await s.reconcile("NetworkPool/tenant")).toBeUndefined();
    expect(s.source.finalizerChanges).toEqual([{ key: "NetworkPool/tenant", present: true }]);
    expect(s.sync.applied).toEqual([]);
    await s.reconcile("NetworkPool/tenant");
    expect(s.sync.applied).toHaveLength(1);
  });

  it("holds a deleted object while the platform uses it, says by what, then removes its finalizer", async () => {
    const s = setup(true);
    s.source.put({
      kind: "NetworkPool",
      name: "tenant",
      deleting: true,
      // What its last apply saw, before the network took a VLAN.
      status: { vlans: { total: 10, free: 10 }, usedBy: [] },
    });
    s.sync.removeResult = {
      ok: false,
      reason: "InUse",
      message: "NetworkPool tenant is in use by network 42",
      retry: true,
      status: { vlans: { total: 10, free: 9 }, usedBy: ["network 42"] },
    };
    expect(await s.reconcile("NetworkPool/tenant")).toEqual({ requeueAfterMs: 5_000 });
    expect(await s.reconcile("NetworkPool/tenant")).toEqual({ requeueAfterMs: 5_000 });
    expect(s.source.get("NetworkPool", "tenant")?.status).toMatchObject({
      vlans: { total: 10, free: 9 },
      usedBy: ["network 42"],
    });
    expect(s.lines.filter((l) => l.reason === "InUse")).toEqual([
      expect.objectContaining({
        level: "info",
        msg: "deletion waits: NetworkPool tenant is in use by network 42",
      }),
    ]);
    expect(conditionsOf(s.source.get("NetworkPool", "tenant")?.status)).toEqual([
      expect.objectContaining({ type: "Ready", status: "False", reason: "InUse" }),
      expect.objectContaining({
        type: "Reconciling",
        status: "True",
        message: "deletion waits: NetworkPool tenant is in use by network 42",
      }),
    ]);
    expect(s.source.get("NetworkPool", "tenant")?.finalizers).toEqual([PLATFORM_FINALIZER]);

    s.sync.removeResult = { ok: true, status: {} };
    expect(await s.reconcile("NetworkPool/tenant")).toBeUndefined();
    expect(s.source.get("NetworkPool", "tenant")?.finalizers).toEqual([]);
    expect(s.sync.removed).toEqual([
      "NetworkPool/tenant",
      "NetworkPool/tenant",
      "NetworkPool/tenant",
    ]);
    expect(s.sync.applied).toEqual([]);
  });

  it("leaves a deleted object without its finalizer alone", async () => {
    const s = setup(true);
    s.source.put({ kind: "NetworkPool", name: "tenant", deleting: true, finalizers: [] });
    expect(await s.reconcile("NetworkPool/tenant")).toBeUndefined();
    expect(s.sync.removed).toEqual([]);
    expect(s.source.statusWrites).toEqual([]);
  });

  it("forgets what is gone from a directory, unless something still uses it", async () => {
    const s = setup(false);
    s.sync.removeResult = {
      ok: false,
      reason: "InUse",
      message: "ServerPool rack1 is in use",
      retry: true,
    };
    expect(await s.reconcile("ServerPool/rack1")).toEqual({ requeueAfterMs: 5_000 });
    s.sync.removeResult = { ok: true, status: {} };
    expect(await s.reconcile("ServerPool/rack1")).toBeUndefined();
    expect(s.sync.removed).toEqual(["ServerPool/rack1", "ServerPool/rack1"]);

    // A cluster keeps an object until its finalizer goes: gone there means nothing to do.
    const cluster = setup(true);
    expect(await cluster.reconcile("ServerPool/rack1")).toBeUndefined();
    expect(cluster.sync.removed).toEqual([]);
  });

  it("writes the status even when the sync never recorded the object, but not past other errors", async () => {
    const s = setup();
    s.source.put({ kind: "Datacenter", name: "osl1" });
    s.sync.applyResult = {
      ok: false,
      reason: "InvalidSpec",
      message: "spec.site: required",
      retry: false,
    };
    s.sync.recordError = new NotFoundError("Datacenter", "osl1");
    expect(await s.reconcile("Datacenter/osl1")).toBeUndefined();
    expect(s.source.statusWrites).toHaveLength(1);

    const t = setup();
    t.source.put({ kind: "Datacenter", name: "osl1" });
    t.sync.recordError = new Error("connection refused");
    await expect(t.reconcile("Datacenter/osl1")).rejects.toThrow("connection refused");
  });
});
