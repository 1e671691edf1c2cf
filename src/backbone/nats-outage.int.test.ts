// nats-server stopped for 10 seconds in the middle of a stream of 1,000 commands, then started:
// the outbox keeps what cannot be published, the worker's unacknowledged commands come back, and
// in the end every command was applied exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backbone, eventually, startBackbone } from "../../test/support/backbone.js";
import { newId } from "../kernel/index.js";

const COMMANDS = 1_000;

let b: Backbone;
beforeAll(async () => {
  b = await startBackbone();
  await b.worker("nett", { concurrency: 16 });
});
afterAll(async () => b.close());

async function effects(): Promise<number> {
  const [row] = await b.t.admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM simulator.effects",
  );
  return row?.n ?? 0;
}

describe("NATS down in the middle of the stream", () => {
  it("loses no command and applies none twice", async () => {
    const sent: string[] = [];
    const producer = (async () => {
      for (let i = 0; i < COMMANDS; i++) {
        const envelope = await b.command("nett", "apply", {
          resource_kind: "network",
          resource_id: newId(),
          generation: 1,
          task_id: null,
          step: "main",
          vlan_id: 100 + (i % 3000),
          cidr: "10.0.0.0/28",
        });
        sent.push(envelope.id);
      }
    })();

    await eventually(
      async () => ((await effects()) >= 200 ? true : undefined),
      30_000,
      "200 commands applied",
    );
    await b.nats.stopServer();
    const appliedAtStop = await effects();
    await new Promise((r) => setTimeout(r, 10_000));
    // Meanwhile the stream went on into PostgreSQL.
    const backlog = await b.services.outbox.backlog();
    expect(backlog.count).toBeGreaterThan(0);
    await b.nats.startServer();
    await producer;

    await eventually(
      async () => ((await effects()) >= COMMANDS ? true : undefined),
      90_000,
      `all ${COMMANDS} commands applied`,
    );
    await eventually(
      async () => ((await b.services.outbox.backlog()).count === 0 ? true : undefined),
      30_000,
      "the outbox to drain",
    );
    expect(appliedAtStop).toBeLessThan(COMMANDS);
    expect(await effects()).toBe(COMMANDS);
    expect(await b.services.simulator.duplicateEffects()).toEqual([]);
    const handled = await b.t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM runtime.inbox WHERE consumer = 'dv-nett' AND message_id = ANY($1)",
      [sent],
    );
    expect(handled).toEqual([{ n: COMMANDS }]);
    expect(await b.services.deadLetterStore.list({}, { limit: 10 })).toEqual({ items: [] });
  }, 180_000);
});
