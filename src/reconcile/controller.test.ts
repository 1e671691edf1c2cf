import { describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { Registry } from "prom-client";
import { VirtualClock } from "./clock.js";
import { Controller, type Reconciler, TerminalError } from "./controller.js";
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
});
