// The platform manager on virtual time, without PostgreSQL: two replicas share the in-memory lease
// table (test/support/memory-leases.ts), each watches a source the test drives and writes through
// a sync that remembers what it was asked. Who leads decides who reconciles.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { MemoryLeases } from "../../test/support/memory-leases.js";
import { createLogger } from "../../src/observability/index.js";
import { VirtualClock } from "../../src/reconcile/index.js";
import type { PlatformLeasePort } from "./leader.js";
import { PlatformManager } from "./manager.js";
import { type PlatformObject, platformKey, type PlatformSource } from "./source.js";
import type { PlatformObjectInput, PlatformSyncPort, SyncResult } from "./sync.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const KEYS = ["Datacenter/dc1", "MachineClass/small", "ServerPool/dc1-a"];
const SETTINGS = { leaseTtlMs: 3_000, leaseRenewMs: 1_000, leaseRetryMs: 300 };

/** The platform's lease row in the in-memory table; the fake sync never asks for the fence. */
function platformLeases(memory: MemoryLeases): PlatformLeasePort {
  return {
    ensureShard: async (shard) => {
      if (!memory.rows.has(shard)) memory.rows.set(shard, { holder: null, token: 0, expiresAt: 0 });
    },
    acquire: (shard, holder, ttlMs) => memory.acquire(shard, holder, ttlMs),
    renew: (grants, holder, ttlMs) => memory.renew(grants, holder, ttlMs),
    release: (grant, holder) => memory.release(grant, holder),
    checkFence: async () => {},
  };
}

/** A directory-like source holding {@link KEYS}; `changed` is what its watch would report. */
class FakeSource implements PlatformSource {
  readonly name = "directory" as const;
  readonly holdsDeletion = false;
  changed: (key: string) => void = () => {};

  async start(changed: (key: string) => void): Promise<void> {
    this.changed = changed;
  }
  async stop(): Promise<void> {}
  get(kind: string, name: string): PlatformObject | undefined {
    if (!KEYS.includes(platformKey(kind, name))) return undefined;
    return { kind, name, generation: 1, spec: {}, deleting: false, finalizers: [], status: {} };
  }
  keys(): string[] {
    return [...KEYS];
  }
  async writeStatus(): Promise<void> {}
  async setFinalizer(): Promise<void> {}
}

/**
 * Remembers every key applied; while `held`, applies wait until {@link release}. A key in
 * `refusals` is refused with that result.
 */
class FakeSync implements PlatformSyncPort {
  readonly applied: string[] = [];
  readonly refusals = new Map<string, SyncResult>();
  held = false;
  #waiting: (() => void)[] = [];

  async apply(input: PlatformObjectInput): Promise<SyncResult> {
    const key = platformKey(input.kind, input.name);
    this.applied.push(key);
    if (this.held) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    return this.refusals.get(key) ?? { ok: true, status: {} };
  }
  async remove(): Promise<SyncResult> {
    return { ok: true, status: {} };
  }
  async recordStatus(): Promise<void> {}
  release(): void {
    this.held = false;
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

function replica(
  holder: string,
  clock: VirtualClock,
  leases: PlatformLeasePort,
  logger = log,
  sync = new FakeSync(),
) {
  const source = new FakeSource();
  const manager = new PlatformManager({
    source,
    sync: () => sync,
    leases,
    holder,
    settings: SETTINGS,
    clock,
    log: logger,
  });
  return { source, sync, manager };
}

describe("PlatformManager", () => {
  it("a new leader queues every key of its source; a former leader drops its queue", async () => {
    const clock = new VirtualClock();
    const memory = new MemoryLeases(clock);
    const leases = platformLeases(memory);
    const a = replica("a", clock, leases);
    const b = replica("b", clock, leases);

    await a.manager.start();
    await clock.advance(0);
    expect(a.manager.leadership.leading).toBe(true);
    expect(a.sync.applied.slice().sort()).toEqual(KEYS);

    // A follower ignores what its watch reports.
    await b.manager.start();
    for (const key of KEYS) b.source.changed(key);
    await clock.advance(1_000);
    expect(b.manager.leadership.leading).toBe(false);
    expect(b.sync.applied).toEqual([]);
    expect(b.manager.queue.length).toBe(0);

    // The leader stalls: its passes hang (two at once), the third change waits in its queue, and
    // its database goes away, so it cannot renew its lease.
    a.sync.held = true;
    for (const key of KEYS) a.source.changed(key);
    await clock.advance(0);
    expect(a.manager.queue.length).toBe(1);
    memory.cutOff.add("a");
    await clock.advance(SETTINGS.leaseTtlMs);
    expect(a.manager.leadership.leading).toBe(false);
    expect(a.manager.queue.length).toBe(0);

    // Once the lease expires the follower takes it over and looks at everything.
    await clock.advance(SETTINGS.leaseTtlMs);
    expect(b.manager.leadership.leading).toBe(true);
    expect(b.sync.applied.slice().sort()).toEqual(KEYS);

    a.sync.release();
    await Promise.all([a.manager.stop(), b.manager.stop()]);
  });

  it("logs an object that waits for another once, at info, without a stack, while it keeps looking", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split("\n").filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const logger = createLogger({
      level: "debug",
      service: "test",
      datacenterId: "dc1",
      destination,
    });
    const clock = new VirtualClock();
    const sync = new FakeSync();
    sync.refusals.set("ServerPool/dc1-a", {
      ok: false,
      reason: "DependencyMissing",
      message: "Datacenter dc9 not found",
      retry: true,
    });
    const a = replica("a", clock, platformLeases(new MemoryLeases(clock)), logger, sync);
    await a.manager.start();
    for (let ms = 0; ms < 3_000; ms += 50) await clock.advance(50);

    const passes = () => sync.applied.filter((k) => k === "ServerPool/dc1-a").length;
    expect(passes()).toBeGreaterThanOrEqual(4); // it kept looking…
    const about = (reason: string) => lines.filter((l) => l.reason === reason);
    expect(about("DependencyMissing")).toEqual([
      expect.objectContaining({
        level: "info",
        key: "ServerPool/dc1-a",
        msg: "Datacenter dc9 not found",
      }),
    ]); // …and said so once
    expect(JSON.stringify(lines)).not.toContain("stack");
    expect(lines.filter((l) => l.level !== "info" && l.level !== "debug")).toEqual([]);

    // The datacenter arrives: the next look finds it, and says so once.
    sync.refusals.clear();
    const before = passes();
    for (let ms = 0; ms < 6_000; ms += 50) await clock.advance(50);
    expect(passes()).toBe(before + 1);
    expect(lines.filter((l) => l.msg === "generation 1 is applied")).toEqual([
      expect.objectContaining({ level: "info", key: "ServerPool/dc1-a" }),
    ]);
    await a.manager.stop();
  });
});
