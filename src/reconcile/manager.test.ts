// The reconcile manager on virtual time, with the in-memory lease port (it passes the same
// contract as PostgreSQL's), a fake resync port and a source the test drives.
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { MemoryLeases } from "../../test/support/memory-leases.js";
import { createLogger } from "../observability/index.js";
import { VirtualClock } from "./clock.js";
import type { Reconciler } from "./controller.js";
import { Manager, type ResyncPort, type Source } from "./manager.js";
import { shardOf } from "./sharding.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const SHARDS = 4;

/** UUID-shaped ids whose shard is `shard` (the last 32 bits modulo the shard count). */
const idIn = (shard: number, n: number): string =>
  `00000000-0000-7000-8000-${(n * SHARDS + shard).toString(16).padStart(12, "0")}`;

function setup(options: { due?: ResyncPort["due"]; random?: () => number } = {}) {
  const clock = new VirtualClock();
  const passes: string[] = [];
  const reconciler: Reconciler = {
    reconcile: async (key) => {
      passes.push(key);
      return undefined;
    },
  };
  const asked: number[][] = [];
  const resync: ResyncPort = {
    due:
      options.due ??
      (async (shards) => {
        asked.push([...shards]);
        return { keys: shards.map((s) => `network:${idIn(s, 1)}`), converged: 10 * shards.length };
      }),
  };
  let push: ((key: string) => void) | undefined;
  let stopped = 0;
  const source: Source = {
    name: "test",
    start: async (enqueue) => {
      push = enqueue;
      return async () => {
        stopped++;
      };
    },
  };
  const metrics = new Registry();
  const manager = new Manager({
    holder: "a",
    datacenterId: "dc1",
    shards: SHARDS,
    leases: new MemoryLeases(clock),
    leaseTtlMs: 15_000,
    leaseRenewMs: 10_000,
    leaseRetryMs: 2_000,
    controllers: [
      { name: "network", reconciler },
      { name: "bucket", reconciler },
    ],
    concurrency: 2,
    sources: [source],
    resync,
    resyncMs: 60_000,
    clock,
    random: options.random ?? (() => 0.5),
    log,
    metrics,
  });
  return {
    clock,
    manager,
    passes,
    asked,
    metrics,
    push: (key: string) => push?.(key),
    stoppedSources: () => stopped,
  };
}

const metricValue = async (registry: Registry, name: string, label?: string) => {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, string> }[];
  return values
    .filter((v) => label === undefined || v.labels.result === label)
    .reduce((sum, v) => sum + v.value, 0);
};

describe("Manager", () => {
  it("on taking its shards, asks once which keys need a pass and queues only those", async () => {
    const t = setup();
    await t.manager.start();
    await t.clock.advance(200);
    // One question for every shard taken in the round, not one per shard.
    expect(t.asked).toEqual([[0, 1, 2, 3]]);
    expect(t.passes.sort()).toEqual([0, 1, 2, 3].map((s) => `network:${idIn(s, 1)}`).sort());
    expect(await metricValue(t.metrics, "dataverket_resync_resources_total", "converged")).toBe(40);
    expect(await metricValue(t.metrics, "dataverket_resync_resources_total", "queued")).toBe(4);
    expect(await metricValue(t.metrics, "dataverket_leases_held")).toBe(SHARDS);
    await t.manager.stop();
  });

  it("resyncs periodically on the injected clock, with the injected jitter", async () => {
    const t = setup({ random: () => 1 }); // +20 %: 72 s
    await t.manager.start();
    await t.clock.advance(200);
    expect(t.asked).toHaveLength(1);
    await t.clock.advance(71_000);
    expect(t.asked).toHaveLength(1);
    await t.clock.advance(1_000);
    expect(t.asked).toHaveLength(2);
    await t.clock.advance(72_000);
    expect(t.asked).toHaveLength(3);
    await t.manager.stop();
    await t.clock.advance(200_000);
    expect(t.asked).toHaveLength(3);
  });

  it("queues a source's keys for the shards it holds, and drops the others", async () => {
    const t = setup({ due: async () => ({ keys: [], converged: 0 }) });
    await t.manager.start();
    await t.clock.advance(200);
    t.push(`bucket:${idIn(2, 7)}`);
    t.push(`server:${idIn(2, 8)}`); // no controller of that kind here
    await t.clock.advance(10);
    expect(t.passes).toEqual([`bucket:${idIn(2, 7)}`]);
    expect(shardOf(idIn(2, 7), SHARDS)).toBe(2);
    await t.manager.stop();
    expect(t.stoppedSources()).toBe(1);
    t.push(`bucket:${idIn(1, 9)}`);
    await t.clock.advance(10);
    expect(t.passes).toEqual([`bucket:${idIn(2, 7)}`]);
  });

  it("a failed resync is tried again on the next period", async () => {
    let calls = 0;
    const t = setup({
      due: async () => {
        calls++;
        if (calls <= 2) throw new Error("database down");
        return { keys: [`network:${idIn(0, 3)}`], converged: 0 };
      },
    });
    await t.manager.start();
    await t.clock.advance(200); // the listing of the shards taken fails
    await t.clock.advance(60_000); // so does the first periodic resync
    expect(t.passes).toEqual([]);
    await t.clock.advance(60_000);
    expect(t.passes).toEqual([`network:${idIn(0, 3)}`]);
    await t.manager.stop();
  });
});
