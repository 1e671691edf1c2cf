import { describe, expect, it } from "vitest";
import { GroupCommit, type Settled } from "./group-commit.js";

/** A flush that records its batches and waits until released. */
function gate() {
  const batches: number[][] = [];
  let open: (() => void) | undefined;
  const flush = async (items: number[]): Promise<Settled<number>[]> => {
    batches.push(items);
    await new Promise<void>((resolve) => (open = resolve));
    return items.map((value) => ({ ok: true, value: value * 10 }));
  };
  const release = async (): Promise<void> => {
    while (!open) await new Promise((r) => setImmediate(r));
    const resume = open;
    open = undefined;
    resume();
  };
  return { batches, flush, release };
}

describe("GroupCommit", () => {
  it("flushes a lone item at once, and what arrives during a flush together in the next", async () => {
    const g = gate();
    const commit = new GroupCommit(g.flush, 100);
    const first = commit.submit(1);
    const rest = [2, 3, 4].map((n) => commit.submit(n));
    expect(commit.waiting).toBe(3);
    await g.release();
    expect(await first).toBe(10);
    await g.release();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
    expect(g.batches).toEqual([[1], [2, 3, 4]]);
  });

  it("takes at most `max` items per flush", async () => {
    const g = gate();
    const commit = new GroupCommit(g.flush, 2);
    const all = [1, 2, 3, 4, 5].map((n) => commit.submit(n));
    for (let i = 0; i < 3; i++) await g.release();
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
    expect(g.batches).toEqual([[1], [2, 3], [4, 5]]);
  });

  it("settles each item with its own outcome: one failure is not its batch-mates'", async () => {
    const commit = new GroupCommit<number, number>(
      async (items) =>
        items.map((n) =>
          n === 2 ? { ok: false, error: new Error("poison 2") } : { ok: true, value: n },
        ),
      10,
    );
    const results = await Promise.allSettled([1, 2, 3].map((n) => commit.submit(n)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error("poison 2"));
  });

  it("fails every item of a batch whose flush throws, and goes on with the next batch", async () => {
    let calls = 0;
    const commit = new GroupCommit<number, number>(async (items) => {
      calls++;
      if (calls === 1) throw new Error("connection lost");
      return items.map((n) => ({ ok: true, value: n }));
    }, 10);
    await expect(commit.submit(1)).rejects.toThrow("connection lost");
    expect(await commit.submit(2)).toBe(2);
  });

  it("never leaves an item behind when it arrives as a flush finishes", async () => {
    // Items submitted from the flush's own continuation land between the last check of the
    // queue and the end of the pump: each must still be flushed.
    const commit: GroupCommit<number, number> = new GroupCommit(async (items) => {
      return items.map((n) => ({ ok: true, value: n }));
    }, 1);
    const chain = async (n: number): Promise<number> =>
      n === 0 ? 0 : chain((await commit.submit(n)) - 1);
    await expect(chain(50)).resolves.toBe(0);
  });

  it("refuses a batch size that is not a positive integer", () => {
    expect(() => new GroupCommit(async () => [], 0)).toThrow(RangeError);
  });
});
