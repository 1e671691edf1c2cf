// Scenario poison: poison messages mixed into a stream of healthy commands, at random positions,
// for a worker process: commands whose device fails every time (transient fault: retried up to
// the configured attempts), commands the device refuses (permanent fault: at once), bytes that
// are not JSON, and envelopes whose payload breaks the command's schema. Checked: 100 % of the
// poison reached the dead-letter store once, with the reason of its kind and (for the retried
// ones) exactly the configured deliveries; 0 healthy commands did, and each was applied exactly
// once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/kernel/index.js";
import { eventually, FAST_WORKERS } from "../test/support/backbone.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { checkQueue } from "./support/checker.js";
import { twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const HEALTHY = size(900, 180);
const POISON = size(100, 20);
const KINDS = ["transient", "permanent", "unparseable", "schema"] as const;
type Kind = (typeof KINDS)[number];
const REASON: Record<Kind, RegExp> = {
  transient: /^retries_exhausted: 3 attempts, last: injected transient fault/,
  permanent: /^permanent_failure: injected fault: chaos/,
  unparseable: /^invalid_message: /,
  schema: /vlan_id/,
};

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ relay: false });
});
afterAll(async () => p.close());

const apply = (resourceId: string) => ({
  resource_kind: "network",
  resource_id: resourceId,
  generation: 1,
  task_id: null,
  step: "main",
  vlan_id: 100,
  cidr: "10.0.0.0/28",
});

describe("poison messages among healthy ones", () => {
  it("all reach the dead-letter store after the configured attempts, and no healthy one does", async () => {
    await p.spawn(["worker", "--service", "nett"], { DV_WORKER_CONCURRENCY: "8" });
    const healthy: string[] = [];
    const poison = new Map<string, Kind>();
    const plan: ("healthy" | Kind)[] = [
      ...Array<"healthy">(HEALTHY).fill("healthy"),
      ...Array.from({ length: POISON }, (_, i) => KINDS[i % KINDS.length] as Kind),
    ].sort(() => Math.random() - 0.5);
    for (const kind of plan) {
      const resourceId = newId();
      switch (kind) {
        case "healthy":
          healthy.push((await p.command("nett", "apply", apply(resourceId))).id);
          break;
        case "transient":
        case "permanent": {
          await p.services.simulator.setFault({
            service: "nett",
            resourceId,
            mode: kind,
            remaining: 1_000,
            message: "chaos",
          });
          poison.set((await p.command("nett", "apply", apply(resourceId))).id, kind);
          break;
        }
        case "unparseable": {
          const id = `garbage-${newId()}`;
          await p.nats.js.publish("dv.nett.cmd.apply", `{not json ${id}`, { msgID: id });
          poison.set(id, kind);
          break;
        }
        case "schema": {
          // A well-formed envelope whose payload breaks the schema: built like a real one, then
          // altered on the way, so the outbox never saw it.
          const good = await p.command("nett", "apply", apply(resourceId));
          healthy.push(good.id);
          const tampered = { ...good, id: newId(), data: { ...good.data, vlan_id: "one hundred" } };
          await p.nats.js.publish("dv.nett.cmd.apply", JSON.stringify(tampered), {
            msgID: tampered.id,
          });
          poison.set(tampered.id, kind);
          break;
        }
      }
    }
    const sentAt = Date.now();

    const deadLetters = () =>
      p.t.admin.query<{ message_id: string; reason: string; delivery_count: number }>(
        "SELECT message_id, reason, delivery_count FROM runtime.dead_letters",
      );
    await eventually(
      async () => ((await deadLetters()).length >= poison.size ? true : undefined),
      120_000,
      `${poison.size} dead letters`,
    );
    const appliedIds = async () =>
      (
        await p.t.admin.query<{ message_id: string }>(
          "SELECT message_id::text FROM simulator.effects",
        )
      ).map((r) => r.message_id);
    await eventually(
      async () => ((await appliedIds()).length >= healthy.length ? true : undefined),
      120_000,
      `${healthy.length} healthy commands applied`,
    );
    const settledMs = Date.now() - sentAt;
    // A moment more, for anything that would still arrive late (a healthy one dead-lettered).
    await new Promise((r) => setTimeout(r, 2_000));

    const dead = await deadLetters();
    const byId = new Map(dead.map((d) => [d.message_id, d]));
    const missing = [...poison.keys()].filter((id) => !byId.has(id));
    const wrongReason = [...poison].filter(([id, kind]) => {
      const d = byId.get(id);
      return d !== undefined && !REASON[kind].test(d.reason);
    });
    const wrongAttempts = [...poison].filter(
      ([id, kind]) =>
        kind === "transient" && byId.get(id)?.delivery_count !== FAST_WORKERS.maxAttempts,
    );
    const healthyDead = healthy.filter((id) => byId.has(id));
    const deadTwice = dead.length - byId.size;
    const verdict = checkQueue({
      attempted: healthy,
      acknowledged: healthy,
      applied: await appliedIds(),
    });
    const twice = await twiceApplied(p.t.admin);
    record({
      scenario: "poison",
      faults: poison.size,
      operations: healthy.length + poison.size,
      lost: verdict.lost.length + missing.length,
      duplicated: verdict.duplicated.length + twice.length + deadTwice,
      violations:
        healthyDead.length + wrongReason.length + wrongAttempts.length + verdict.unexpected.length,
      recoveryMs: settledMs,
      figures: { dead_letters: dead.length, healthy_dead_lettered: healthyDead.length },
    });
    expect(missing).toEqual([]);
    expect(wrongReason).toEqual([]);
    expect(wrongAttempts).toEqual([]);
    expect(healthyDead).toEqual([]);
    expect(deadTwice).toBe(0);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], valid: true });
    expect(twice).toEqual([]);
  });
});
