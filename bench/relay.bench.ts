// The transactional outbox to JetStream: messages committed in PostgreSQL, published by the
// relay (claimed FOR UPDATE SKIP LOCKED, published, acknowledged, deleted), on a nats-server that
// fsyncs every write.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backbone, eventually, startBackbone } from "../test/support/backbone.js";
import { STREAMS } from "../src/jetstream/index.js";
import { inTransaction } from "../src/db/index.js";
import { newId } from "../src/kernel/index.js";
import { createEnvelope, domainCommands, messageHeaders } from "../src/messaging/index.js";
import { report } from "./support/report.js";
import { size } from "./support/scale.js";

const MESSAGES = size(5_000, 1_000);
const PER_TRANSACTION = 100;

let b: Backbone;
beforeAll(async () => {
  b = await startBackbone();
});
afterAll(async () => b.close());

describe("outbox relay", () => {
  it(`${MESSAGES} commands from PostgreSQL to JetStream`, async () => {
    const spec = domainCommands.nett.apply;
    if (!spec) throw new Error("no nett.apply command");
    const before = (await b.nats.jsm.streams.info(STREAMS.commands)).state.messages;
    const started = performance.now();
    for (let i = 0; i < MESSAGES; i += PER_TRANSACTION) {
      await inTransaction(b.services.db, (tx) =>
        b.services.outbox.enqueue(
          tx,
          Array.from({ length: PER_TRANSACTION }, (_, i) => {
            const id = newId();
            const envelope = createEnvelope(
              spec.command,
              {
                resource_kind: "network",
                resource_id: newId(),
                generation: 1,
                task_id: null,
                step: "apply",
                vlan_id: 100 + (i % 3000),
                cidr: "10.20.0.0/28",
              },
              {
                id,
                time: new Date(),
                subject: id,
                actor: "bench",
                correlationId: id,
                causationId: null,
                tenantId: null,
                projectId: null,
                environmentId: null,
                datacenterId: "dc1",
              },
            );
            return { id, subject: spec.command.subject, envelope, headers: messageHeaders(id) };
          }),
        ),
      );
    }
    const committed = performance.now();
    await eventually(
      async () => ((await b.services.outbox.backlog()).count === 0 ? true : undefined),
      300_000,
      "the outbox to drain",
    );
    const drained = performance.now();
    const stored = (await b.nats.jsm.streams.info(STREAMS.commands)).state.messages - before;
    expect(stored).toBe(MESSAGES);
    report("relay", {
      "commit to outbox": [MESSAGES / ((committed - started) / 1000), "msg/s"],
      "commit to stored in JetStream": [MESSAGES / ((drained - started) / 1000), "msg/s"],
    });
  });
});
