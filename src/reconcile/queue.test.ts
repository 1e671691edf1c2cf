import { describe, expect, it } from "vitest";
import { VirtualClock } from "./clock.js";
import { WorkQueue } from "./queue.js";

const make = (options: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}) => {
  const clock = new VirtualClock();
  return { clock, queue: new WorkQueue({ clock, ratePerSecond: 1e9, burst: 1e9, ...options }) };
};

/** Takes a key if one is ready now (after letting time move by `ms`). */
async function take(clock: VirtualClock, queue: WorkQueue, ms = 0): Promise<string | undefined> {
  let got: string | undefined | null = null;
  const pending = queue.get().then((k) => (got = k));
  await clock.advance(ms);
  if (got === null) {
    queue.shutdown();
    await pending;
    return undefined;
  }
  return got ?? undefined;
}

describe("WorkQueue", () => {
  it("hands a key out once however often it was added", async () => {
    const { clock, queue } = make();
    queue.add("a");
    queue.add("a");
    queue.add("a", "resync");
    expect(queue.length).toBe(1);
    expect(await take(clock, queue)).toBe("a");
    expect(queue.length).toBe(0);
  });

  it("never has two passes of one key in flight; a key added meanwhile comes back after done", async () => {
    const { clock, queue } = make();
    queue.add("a");
    expect(await queue.get()).toBe("a");
    queue.add("a");
    queue.add("b");
    expect(await queue.get()).toBe("b");
    expect(queue.length).toBe(0);
    queue.done("a");
    expect(queue.length).toBe(1);
    expect(await take(clock, queue)).toBe("a");
  });

  it("backs off per key exponentially from 5 ms, capped, and forgets on success", async () => {
    const { queue } = make({ maxDelayMs: 100 });
    expect([1, 2, 3, 4, 5, 6, 7].map(() => queue.addRateLimited("k"))).toEqual([
      5, 10, 20, 40, 80, 100, 100,
    ]);
    queue.forget("k");
    expect(queue.addRateLimited("k")).toBe(5);
  });

  it("hands out a delayed key only when it is due", async () => {
    const { clock, queue } = make();
    queue.addAfter("later", 1000);
    expect(await take(clock, queue, 999)).toBeUndefined();
    const { clock: c2, queue: q2 } = make();
    q2.addAfter("later", 1000);
    expect(await take(c2, q2, 1000)).toBe("later");
  });

  it("limits the overall rate with a token bucket", async () => {
    const { clock, queue } = make({ ratePerSecond: 10, burst: 2 });
    for (const k of ["a", "b", "c"]) queue.add(k);
    const got: string[] = [];
    const takeAll = (async () => {
      for (let i = 0; i < 3; i++) got.push((await queue.get()) ?? "");
    })();
    await clock.advance(0);
    expect(got).toEqual(["a", "b"]);
    await clock.advance(99);
    expect(got).toEqual(["a", "b"]);
    await clock.advance(1);
    await takeAll;
    expect(got).toEqual(["a", "b", "c"]);
  });

  it("lets a fresh change overtake a whole resync, however long ago the resync was queued", async () => {
    const { clock, queue } = make();
    for (let i = 0; i < 10_000; i++) queue.add(`resync-${i}`, "resync");
    expect(await queue.get()).toBe("resync-0");
    queue.done("resync-0");
    // Ten minutes into the resync (100,000 keys take that long), a tenant changes a resource,
    // one the resync has not reached yet.
    await clock.advance(600_000);
    queue.add("resync-9999");
    queue.add("fresh");
    expect(await queue.get()).toBe("resync-9999");
    expect(await queue.get()).toBe("fresh");
    expect(queue.length).toBe(9_998);
  });

  it("never starves resync keys under a constant stream of fresh ones", async () => {
    const { clock, queue } = make({ resyncEvery: 8 });
    queue.add("old-resync", "resync");
    let served = -1;
    // Every 10 ms a fresh key arrives and one key is processed: the fresh stream alone would fill the queue.
    for (let tick = 0; tick < 500 && served < 0; tick++) {
      queue.add(`fresh-${tick}`);
      queue.add(`fresh-${tick}-b`);
      const key = await queue.get();
      if (key === "old-resync") served = clock.now();
      queue.done(key ?? "");
      await clock.advance(10);
    }
    expect(served).toBeGreaterThanOrEqual(0);
    // One pass in eight goes to the resync lane while it has keys: it waits seven passes (70 ms),
    // even with fresh keys arriving faster than they are served.
    expect(served).toBe(70);
  });

  it("drops queued keys of a lost shard, and reports the oldest wait", async () => {
    const { clock, queue } = make();
    queue.add("s1:a");
    await clock.advance(500);
    queue.add("s2:b");
    expect(queue.oldestAgeMs()).toBe(500);
    expect(queue.remove((k) => k.startsWith("s1:"))).toBe(1);
    expect(queue.length).toBe(1);
    expect(queue.oldestAgeMs()).toBe(0);
  });
});
