// Scenario nats-restart: nats-server killed with SIGKILL in the middle of a stream of 1,000
// commands (300 in --quick), kept down 5 s, then started on the same store. The worker process
// (with its outbox relay) and the producer carry on. Checked: the outbox kept what could not be
// published and re-sent it, every command was applied exactly once (no command lost, none
// twice), each is in the worker's inbox, and nothing reached the dead-letter store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/kernel/index.js";
import { eventually } from "../test/support/backbone.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { checkQueue } from "./support/checker.js";
import { twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const COMMANDS = size(1_000, 300);
const DOWN_MS = size(5_000, 3_000);

let p: Plane;
beforeAll(async () => {
  // No relay in this process: the worker process publishes the outbox.
  p = await startPlane({ relay: false });
});
afterAll(async () => p.close());

async function appliedCommands(): Promise<string[]> {
  const rows = await p.t.admin.query<{ message_id: string }>(
    "SELECT message_id::text FROM simulator.effects",
  );
  return rows.map((r) => r.message_id);
}

describe("nats-server killed in the middle of the stream", () => {
  it("loses no command and applies none twice", async () => {
    await p.spawn(["worker", "--service", "nett"], { DV_WORKER_CONCURRENCY: "16" });
    const acknowledged: string[] = [];
    const producer = (async () => {
      for (let i = 0; i < COMMANDS; i++) {
        // The command is acknowledged once its outbox row is committed: from then on it is the
        // platform's to deliver.
        const envelope = await p.command("nett", "apply", {
          resource_kind: "network",
          resource_id: newId(),
          generation: 1,
          task_id: null,
          step: "main",
          vlan_id: 100 + (i % 3000),
          cidr: "10.0.0.0/28",
        });
        acknowledged.push(envelope.id);
      }
    })();

    await eventually(
      async () => ((await appliedCommands()).length >= COMMANDS / 5 ? true : undefined),
      60_000,
      `${COMMANDS / 5} commands applied`,
    );
    await p.nats.killServer();
    const appliedAtKill = (await appliedCommands()).length;
    await new Promise((r) => setTimeout(r, DOWN_MS));
    // Meanwhile the stream went on into PostgreSQL.
    const backlog = await p.services.outbox.backlog();
    await p.nats.startServer();
    const restartedAt = Date.now();
    await producer;

    await eventually(
      async () => ((await appliedCommands()).length >= COMMANDS ? true : undefined),
      120_000,
      `all ${COMMANDS} commands applied`,
    );
    const recoveryMs = Date.now() - restartedAt;
    await eventually(
      async () => ((await p.services.outbox.backlog()).count === 0 ? true : undefined),
      30_000,
      "the outbox to drain",
    );
    const verdict = checkQueue({
      // Writing to PostgreSQL never failed here: every command attempted was acknowledged.
      attempted: acknowledged,
      acknowledged,
      applied: await appliedCommands(),
    });
    const twice = await twiceApplied(p.t.admin);
    const [handled] = await p.t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM runtime.inbox WHERE consumer = 'dv-nett' AND message_id = ANY($1)",
      [acknowledged],
    );
    const dead = await p.services.deadLetterStore.list({}, { limit: 10 });
    record({
      scenario: "nats-restart",
      faults: 1,
      operations: COMMANDS,
      lost: verdict.lost.length,
      duplicated: verdict.duplicated.length + twice.length,
      violations: verdict.unexpected.length + dead.items.length + (COMMANDS - (handled?.n ?? 0)),
      recoveryMs,
      figures: { applied_at_kill: appliedAtKill, outbox_backlog_while_down: backlog.count },
    });
    expect(backlog.count).toBeGreaterThan(0);
    expect(appliedAtKill).toBeLessThan(COMMANDS);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], unexpected: [], valid: true });
    expect(twice).toEqual([]);
    expect(handled).toEqual({ n: COMMANDS });
    expect(dead).toEqual({ items: [] });
  });
});
