// The lease manager on virtual time, over an in-memory lease port that keeps time by the same
// clock. The in-memory port passes the same contract as LeaseStore does against PostgreSQL
// (src/contexts/runtime/leases.int.test.ts).
import { describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { VirtualClock } from "./clock.js";
import { leasePortContract } from "../../test/support/lease-contract.js";
import { MemoryLeases } from "../../test/support/memory-leases.js";
import { LeaseManager } from "./leases.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });

const SHARDS = 12;

function replica(port: MemoryLeases, clock: VirtualClock, holder: string) {
  const events: string[] = [];
  const manager = new LeaseManager({
    port,
    holder,
    datacenterId: "dc1",
    shards: SHARDS,
    ttlMs: 15_000,
    renewMs: 10_000,
    retryMs: 2_000,
    clock,
    log,
    random: () => 0.5,
    onAcquired: (g) => events.push(`+${g.shard}`),
    onLost: (s) => events.push(`-${s}`),
  });
  return { manager, events };
}

leasePortContract("in-memory lease port", async () => {
  const clock = new VirtualClock();
  return { port: new MemoryLeases(clock), pass: (ms) => clock.advance(ms), close: async () => {} };
});

describe("LeaseManager", () => {
  it("takes every shard alone, and keeps them by renewing", async () => {
    const clock = new VirtualClock();
    const port = new MemoryLeases(clock);
    const a = replica(port, clock, "a");
    await a.manager.start();
    expect(a.manager.held()).toHaveLength(SHARDS);
    await clock.advance(120_000);
    expect(a.manager.held()).toHaveLength(SHARDS);
    expect(port.heldBy("a")).toBe(SHARDS);
    expect(a.events.filter((e) => e.startsWith("-"))).toEqual([]);
    await a.manager.stop();
  });

  it("gives shards to a replica that joins, so each holds its fair share", async () => {
    const clock = new VirtualClock();
    const port = new MemoryLeases(clock);
    const a = replica(port, clock, "a");
    const b = replica(port, clock, "b");
    const c = replica(port, clock, "c");
    await a.manager.start();
    await b.manager.start();
    await c.manager.start();
    await clock.advance(20_000);
    expect([port.heldBy("a"), port.heldBy("b"), port.heldBy("c")]).toEqual([4, 4, 4]);
    // Each shard is held by exactly one replica as each sees it.
    const held = [a, b, c].flatMap((r) => r.manager.held().map((g) => g.shard));
    expect(held.sort((x, y) => x - y)).toEqual([...Array(SHARDS).keys()]);
    for (const r of [a, b, c]) await r.manager.stop();
  });

  it("takes over the shards of a replica that died once their leases expire", async () => {
    const clock = new VirtualClock();
    const port = new MemoryLeases(clock);
    const a = replica(port, clock, "a");
    const b = replica(port, clock, "b");
    await a.manager.start();
    await b.manager.start();
    await clock.advance(20_000);
    expect(port.heldBy("b")).toBe(6);
    // b falls silent (a crash: nothing it says reaches the database any more). Its leases run
    // out at most 15 s after their last renewal; a takes them within a retry round after that.
    port.cutOff.add("b");
    await clock.advance(4_000);
    expect(port.heldBy("a")).toBe(6);
    await clock.advance(15_000 + 2_400);
    expect(port.heldBy("a")).toBe(SHARDS);
    await a.manager.stop();
    port.cutOff.clear();
    await b.manager.stop();
  });

  it("treats its leases as lost before they can expire when it cannot renew them", async () => {
    const clock = new VirtualClock();
    const port = new MemoryLeases(clock);
    const a = replica(port, clock, "a");
    await a.manager.start();
    port.cutOff.add("a");
    const lostAt: number[] = [];
    const before = a.events.length;
    for (let t = 0; t < 16_000; t += 500) {
      await clock.advance(500);
      if (a.events.length > before && lostAt.length === 0) lostAt.push(clock.now());
    }
    // Every shard is given up by 90 % of the lease duration (13.5 s) plus one retry round,
    // before PostgreSQL would let another replica take it at 15 s.
    expect(a.manager.held()).toEqual([]);
    expect(a.events.slice(before).filter((e) => e.startsWith("-"))).toHaveLength(SHARDS);
    expect(lostAt[0]).toBeLessThan(15_000);
    port.cutOff.clear();
    await clock.advance(3_000);
    expect(a.manager.held()).toHaveLength(SHARDS);
    await a.manager.stop();
  });

  it("gives everything back on stop", async () => {
    const clock = new VirtualClock();
    const port = new MemoryLeases(clock);
    const a = replica(port, clock, "a");
    await a.manager.start();
    await a.manager.stop();
    expect(port.heldBy("a")).toBe(0);
    expect(port.members.has("a")).toBe(false);
    expect(a.events.filter((e) => e.startsWith("-"))).toHaveLength(SHARDS);
  });
});
