// A nett worker process killed with SIGKILL in the middle of commands, 50 times over: every task
// still ends, and the simulated driver saw each side effect exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type Plane, startPlane } from "../../test/support/plane.js";
import { STREAMS } from "../nats/index.js";

const NETWORKS = 60;
const KILLS = 50;

let p: Plane;
beforeAll(async () => {
  // Up to 13 deliveries (10 attempts + 3): a command survives several kills before JetStream
  // would call it a poison pill.
  p = await startPlane({
    controllers: true,
    workerSettings: { simLatencyMs: 150, ackWaitMs: 1_500, maxAttempts: 10 },
  });
});
afterAll(async () => p.close());

describe("a worker killed mid-command", () => {
  it(`${KILLS} times: every task succeeds and every side effect happened once`, async () => {
    const requested: Awaited<ReturnType<Plane["request"]>>[] = [];
    for (let i = 0; i < NETWORKS; i++)
      requested.push(await p.request("network", `crash-${i}`, { prefixLength: 28 }));

    const spawnWorker = () =>
      p.spawn(["worker", "--service", "nett"], {
        DV_SIM_LATENCY_MS: "150",
        DV_WORKER_CONCURRENCY: "4",
      });
    let worker = await spawnWorker();
    let midCommand = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // Keep work flowing, so every kill can land in the middle of a command.
      for (let i = 0; i < 4; i++)
        requested.push(await p.request("network", `crash-${kill}-${i}`, { prefixLength: 28 }));
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 450));
      // Aim the kill at a command in progress: wait (up to 2 s) until the worker holds one.
      const aimUntil = Date.now() + 2_000;
      let inProgress = false;
      while (!inProgress && Date.now() < aimUntil) {
        const consumer = await p.nats.jsm.consumers.info(STREAMS.commands, "dv-nett");
        inProgress = consumer.num_ack_pending > 0;
        if (!inProgress) await new Promise((r) => setTimeout(r, 20));
      }
      if (inProgress) midCommand++;
      worker.child.kill("SIGKILL");
      await worker.exited;
      worker = await spawnWorker();
    }

    const states = await eventually(
      async () => {
        const tasks = await Promise.all(requested.map((r) => p.services.taskStore.get(r.taskId)));
        return tasks.every((t) => ["succeeded", "failed", "cancelled"].includes(t.state))
          ? tasks.map((t) => t.state)
          : undefined;
      },
      120_000,
      "every task to end",
    );
    const dead = await p.services.deadLetterStore.list({}, { limit: 100 });
    expect(dead.items.map((d) => d.reason)).toEqual([]);
    expect(states).toEqual(Array(requested.length).fill("succeeded"));
    expect(await p.services.simulator.duplicateEffects()).toEqual([]);
    // Most kills landed while commands were being handled (the test did what it says).
    expect(midCommand).toBeGreaterThanOrEqual(KILLS * 0.8);
    for (const { resource } of requested) {
      const effects = await p.services.simulator.effectsOf(resource.id);
      expect(
        effects.filter((e) => e.operation === "provision"),
        resource.name,
      ).toHaveLength(1);
    }
    // 50 worker processes, started one after the other: about 3 minutes on 2 busy cores. The
    // bound is there to end a hung run, not to measure speed.
  }, 600_000);
});
