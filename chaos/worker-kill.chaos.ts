// Scenario worker-kill: a nett worker process killed with SIGKILL at a random moment, aimed at a
// command in progress, 100 times over (10 in --quick) while tenants keep creating networks.
// Checked: every network the API acknowledged was provisioned exactly once (the simulated
// driver's ledger), no command caused two side effects, every task ended `succeeded`, and nothing
// reached the dead-letter store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STREAMS } from "../src/nats/index.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { allEnd, provisionVerdict, twiceApplied } from "./support/ledger.js";
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
    const attempted: string[] = [];
    const requested: Awaited<ReturnType<Plane["request"]>>[] = [];
    const create = async (name: string) => {
      const r = await p.request("network", name, { prefixLength: 28 });
      attempted.push(r.resource.id);
      requested.push(r);
    };
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

    const { states, tookMs } = await allEnd(
      p.services,
      requested.map((r) => r.taskId),
      180_000,
    );
    const dead = await p.services.deadLetterStore.list({}, { limit: 100 });
    const verdict = await provisionVerdict(
      p.t.admin,
      attempted,
      requested.map((r) => r.resource.id),
    );
    const twice = await twiceApplied(p.t.admin);
    const notSucceeded = states.filter((s) => s !== "succeeded").length;
    record({
      scenario: "worker-kill",
      faults: KILLS,
      operations: requested.length,
      lost: verdict.lost.length,
      duplicated: verdict.duplicated.length + twice.length,
      violations: notSucceeded + dead.items.length + verdict.unexpected.length,
      recoveryMs: tookMs,
      figures: { kills_mid_command: midCommand, networks: requested.length },
    });
    expect(dead.items.map((d) => d.reason)).toEqual([]);
    expect(states).toEqual(Array(requested.length).fill("succeeded"));
    expect(verdict).toMatchObject({ lost: [], duplicated: [], unexpected: [], valid: true });
    expect(twice).toEqual([]);
    // Most kills landed while commands were being handled (the scenario did what it says).
    expect(midCommand).toBeGreaterThanOrEqual(KILLS * 0.8);
  });
});
