import { describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { Registry } from "prom-client";
import { VirtualClock } from "./clock.js";
import {
  type BatchReconciler,
  Controller,
  type PassSettled,
  type Reconciler,
  TerminalError,
} from "./controller.js";
import { WorkQueue } from "./queue.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });

function harness(reconciler: Reconciler, concurrency = 2) {
  const clock = new VirtualClock();
  const metrics = new Registry();
  const queue = new WorkQueue({ clock, ratePerSecond: 1e9, burst: 1e9 });
  const controller = new Controller({
    name: "test",
    reconciler,
    queue,
    concurrency,
    log,
    clock,
    metrics,
  });
  controller.start();
  return { clock, queue, controller, metrics };
}

async function counter(metrics: Registry, result: string): Promise<number> {
  const metric = await metrics.getSingleMetric("dataverket_reconcile_total")?.get();
  return metric?.values.find((v) => v.labels.result === result)?.value ?? 0;
}

describe("Controller", () => {
  it("retries a failing key with backoff until it succeeds", async () => {
    const attempts: number[] = [];
    const { clock, queue, controller, metrics } = harness({
      async reconcile() {
        attempts.push(clock.now());
        if (attempts.length < 4) throw new Error("not yet");
        return undefined;
      },
    });
    queue.add("k");
    await clock.advance(1000);
    expect(attempts).toEqual([0, 5, 15, 35]);
    expect(await counter(metrics, "error")).toBe(3);
    expect(await counter(metrics, "success")).toBe(1);
    await controller.stop();
  });

  it("does not retry a terminal error, and survives a panic", async () => {
    const seen: string[] = [];
    const { clock, queue, controller, metrics } = harness({
      async reconcile(key) {
        seen.push(key);
        if (key === "terminal") throw new TerminalError("bad spec");
        // A "panic": something that is not even an Error.
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        if (key === "panic") throw "a string, not an Error";
        return undefined;
      },
    });
    queue.add("terminal");
    queue.add("panic");
    await clock.advance(3);
    queue.add("fine");
    await clock.advance(1000);
    expect(seen.filter((k) => k === "terminal")).toHaveLength(1);
    expect(seen).toContain("fine");
    expect(await counter(metrics, "terminal")).toBe(1);
    expect(await counter(metrics, "panic")).toBeGreaterThanOrEqual(1);
    await controller.stop();
  });

  it("requeues after the delay a pass asks for", async () => {
    const times: number[] = [];
    const { clock, queue, controller } = harness({
      async reconcile() {
        times.push(clock.now());
        return times.length < 3 ? { requeueAfterMs: 1000 } : undefined;
      },
    });
    queue.add("poll");
    await clock.advance(5000);
    expect(times).toEqual([0, 1000, 2000]);
    await controller.stop();
  });

  it("runs one pass per key at a time, however often the key changes", async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const { clock, queue, controller } = harness(
      {
        async reconcile() {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          await new Promise((r) => setTimeout(r, 1));
          inFlight--;
          return undefined;
        },
      },
      8,
    );
    for (let i = 0; i < 50; i++) {
      queue.add("hot");
      await clock.advance(0);
    }
    await new Promise((r) => setTimeout(r, 50));
    await clock.advance(10);
    expect(maxInFlight).toBe(1);
    await controller.stop();
  });

  it("hands a batch reconciler what queued while its last batch ran, each key settled on its own", async () => {
    const batches: string[][] = [];
    let release: (() => void) | undefined;
    const reconciler: BatchReconciler = {
      reconcile: async () => undefined,
      async reconcileMany(keys) {
        batches.push([...keys]);
        // The first batch is held until the test lets it go: the others queue meanwhile.
        if (batches.length === 1) await new Promise<void>((r) => (release = r));
        const out = new Map<string, PassSettled>();
        for (const key of keys)
          out.set(
            key,
            key === "fails"
              ? { ok: false, error: new Error("not yet") }
              : key === "stops"
                ? { ok: false, error: new TerminalError("bad spec") }
                : key === "later"
                  ? { ok: true, result: { requeueAfterMs: 500 } }
                  : { ok: true, result: undefined },
          );
        return out;
      },
    };
    // Concurrency 8: one batch loop.
    const { clock, queue, controller, metrics } = harness(reconciler, 8);
    queue.add("first");
    await clock.advance(1);
    for (const key of ["fails", "stops", "later", "fine"]) queue.add(key);
    await clock.advance(1);
    expect(batches).toEqual([["first"]]);
    release?.();
    await clock.advance(1);
    // Everything queued meanwhile in one batch.
    expect(batches[1]?.sort()).toEqual(["fails", "fine", "later", "stops"]);
    expect(await counter(metrics, "error")).toBe(1);
    expect(await counter(metrics, "terminal")).toBe(1);
    expect(await counter(metrics, "requeue")).toBe(1);
    expect(await counter(metrics, "success")).toBe(2);
    // The failed key again after each backoff, the requeued one every 500 ms; the others never.
    await clock.advance(1000);
    const after = batches.slice(2).flat();
    expect(new Set(after)).toEqual(new Set(["fails", "later"]));
    expect(after.filter((k) => k === "later")).toHaveLength(2);
    await controller.stop();
  });

  it("stops only once the batch in flight is done (a Ctrl-C mid-pass loses no write)", async () => {
    let release: (() => void) | undefined;
    let finished = false;
    const reconciler: BatchReconciler = {
      reconcile: async () => undefined,
      async reconcileMany(keys) {
        await new Promise<void>((r) => (release = r));
        finished = true;
        return new Map(keys.map((k) => [k, { ok: true, result: undefined }]));
      },
    };
    const { clock, queue, controller } = harness(reconciler, 8);
    queue.add("k");
    await clock.advance(1);
    let stopped = false;
    const stopping = controller.stop().then(() => (stopped = true));
    await clock.advance(100);
    expect(stopped).toBe(false);
    release?.();
    await stopping;
    expect(finished).toBe(true);
  });
});
