// Scenario worker-kill: a nett worker process killed with SIGKILL at a random moment, aimed at a
// command in progress, 100 times over (10 in --quick) while tenants keep creating networks.
// Checked: every network the API acknowledged was provisioned exactly once (the simulated
// driver's ledger), no command caused two side effects, every task ended `succeeded`, and nothing
// reached the dead-letter store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STREAMS } from "../src/jetstream/index.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { networkWorkload } from "./support/workload.js";
import { record, size } from "./support/report.js";

const NETWORKS = size(60, 20);
const KILLS = size(100, 10);

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
    const networks = networkWorkload(p);
    const create = (name: string) => networks.create(name);
    for (let i = 0; i < NETWORKS; i++) await create(`crash-${i}`);

    const spawnWorker = () =>
      p.spawn(["worker", "--service", "nett"], {
        DV_SIM_LATENCY_MS: "150",
        DV_WORKER_CONCURRENCY: "4",
      });
    let worker = await spawnWorker();
    let midCommand = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      // Keep work flowing, so every kill can land in the middle of a command.
      for (let i = 0; i < 4; i++) await create(`crash-${kill}-${i}`);
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 450));
      // Aim the kill at a command in progress: wait until the worker holds one, adding work while
      // it holds none (a slow machine dispatches later, it does not dispatch less). The bound only
      // turns work that never flows into a failure.
      const aimUntil = Date.now() + 60_000;
      let inProgress = false;
      for (let poll = 1; !inProgress && Date.now() < aimUntil; poll++) {
        const consumer = await p.nats.jsm.consumers.info(STREAMS.commands, "dv-nett");
        inProgress = consumer.num_ack_pending > 0;
        if (!inProgress) {
          if (poll % 50 === 0) await create(`crash-${kill}-more-${poll}`);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      if (inProgress) midCommand++;
      worker.child.kill("SIGKILL");
      await worker.exited;
      worker = await spawnWorker();
    }

    const settled = await networks.settle(180_000);
    record({
      scenario: "worker-kill",
      faults: KILLS,
      operations: networks.requested.length,
      lost: settled.lost,
      duplicated: settled.duplicated,
      violations: settled.violations,
      recoveryMs: settled.tookMs,
      figures: { kills_mid_command: midCommand, networks: networks.requested.length },
    });
    settled.assert();
    // Every kill landed while the worker held a command (the scenario did what it says).
    expect(midCommand).toBe(KILLS);
  });
});
