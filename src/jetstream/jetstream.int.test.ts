// The messaging backbone against a real nats-server and PostgreSQL: topology, outbox relay,
// workers with inbox, retries and dead letters, and the advisory path.
import { headers } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backbone, eventually, startBackbone } from "../../test/support/backbone.js";
import { inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { createEnvelope, domainCommands } from "../messaging/index.js";
import { DEFAULT_TOPOLOGY, ensureTopology, STREAMS } from "./index.js";

let b: Backbone;
beforeAll(async () => {
  b = await startBackbone({ maxDeliver: 4 });
  await b.worker("nett");
});
afterAll(async () => b.close());

const apply = (resourceId: string, taskId: string | null, extra: Record<string, unknown> = {}) => ({
  resource_kind: "network",
  resource_id: resourceId,
  generation: 1,
  task_id: taskId,
  step: "main",
  vlan_id: 100,
  cidr: "10.0.0.0/24",
  ...extra,
});

async function eventsFor(
  resourceId: string,
): Promise<{ subject: string; data: Record<string, unknown> }[]> {
  const info = await b.nats.jsm.streams.info(STREAMS.events);
  const found: { subject: string; data: Record<string, unknown> }[] = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await b.nats.jsm.streams.getMessage(STREAMS.events, { seq }).catch(() => null);
    if (!m) continue;
    const envelope = m.json<{ data: Record<string, unknown> }>();
    if (envelope.data.resource_id === resourceId)
      found.push({ subject: m.subject, data: envelope.data });
  }
  return found;
}

async function deadLetterFor(messageId: string) {
  const page = await b.services.deadLetterStore.list({}, { limit: 500 });
  return page.items.find((d) => d.messageId === messageId);
}

describe("topology", () => {
  it("declares the streams and durable consumers, idempotently", async () => {
    await ensureTopology(b.nats.jsm, undefined, {
      ...DEFAULT_TOPOLOGY,
      maxDeliver: 4,
      ackWaitMs: 2_000,
    });
    const commands = await b.nats.jsm.streams.info(STREAMS.commands);
    expect(commands.config.retention).toBe("workqueue");
    expect(commands.config.subjects).toEqual(["dv.*.cmd.>"]);
    const names: string[] = [
      STREAMS.commands,
      STREAMS.events,
      STREAMS.taskEvents,
      STREAMS.deadLetters,
      STREAMS.advisories,
    ];
    for (const name of names) {
      expect((await b.nats.jsm.streams.info(name)).config.name).toBe(name);
    }
    const nett = await b.nats.jsm.consumers.info(STREAMS.commands, "dv-nett");
    expect(nett.config).toMatchObject({
      filter_subject: "dv.nett.cmd.>",
      ack_policy: "explicit",
      max_deliver: 4,
    });
  });
});

describe("outbox relay", () => {
  it("publishes committed messages with their envelope id as Nats-Msg-Id; a re-publish is dropped", async () => {
    const task = await b.task();
    const msgs = await eventually(
      async () => {
        const info = await b.nats.jsm.streams.info(STREAMS.taskEvents);
        return info.state.messages >= 1 ? info.state : undefined;
      },
      10_000,
      "the task.created event",
    );
    const stored = await b.nats.jsm.streams.getMessage(STREAMS.taskEvents, { seq: msgs.last_seq });
    const envelope = stored?.json<{ id: string; type: string; data: { task_id: string } }>();
    expect(envelope).toMatchObject({ type: "task.created", data: { task_id: task.id } });
    expect(stored?.header?.get("Nats-Msg-Id")).toBe(envelope?.id);
    expect(stored?.header?.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // The relay dying after publish and before delete re-publishes the same id: JetStream drops it.
    const h = headers();
    const again = await b.nats.js.publish(stored?.subject ?? "", stored?.data ?? new Uint8Array(), {
      msgID: envelope?.id ?? "",
      headers: h,
    });
    expect(again.duplicate).toBe(true);
    expect((await b.services.outbox.backlog()).count).toBe(0);
  });

  it("does not publish what a rolled-back transaction wrote", async () => {
    const before = (await b.nats.jsm.streams.info(STREAMS.taskEvents)).state.messages;
    await expect(
      inTransaction(b.t.db, async (tx) => {
        await b.services.tasks.create(tx, {
          operation: "x.create",
          resourceKind: "network",
          resourceId: newId(),
          datacenterId: "dc1",
          actor: "t",
          correlationId: "c",
        });
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    await b.relay!.drain();
    expect((await b.nats.jsm.streams.info(STREAMS.taskEvents)).state.messages).toBe(before);
  });
});

describe("workers", () => {
  it("apply a command once, record it in the inbox, announce the event and start the task", async () => {
    const task = await b.task();
    const cmd = await b.command("nett", "apply", apply(task.resourceId, task.id));
    const [event] = await eventually(
      async () => {
        const found = await eventsFor(task.resourceId);
        return found.length > 0 ? found : undefined;
      },
      10_000,
      "network.applied",
    );
    expect(event).toMatchObject({
      subject: "dv.nett.evt.network.applied",
      data: { command_id: cmd.id, vlan_id: 100, gateway: "10.0.0.1", generation: 1 },
    });
    expect(await b.services.simulator.effectsOf(task.resourceId)).toHaveLength(1);
    expect(await b.services.inbox.handled("dv-nett", cmd.id)).toMatchObject({
      subject: "dv.nett.evt.network.applied",
    });
    expect((await b.services.taskStore.get(task.id)).state).toBe("started");
    expect((await b.nats.jsm.streams.info(STREAMS.commands)).state.messages).toBe(0);
  });

  it("re-announce instead of acting again when a handled command comes back", async () => {
    const resourceId = newId();
    const cmd = await b.command("nett", "apply", apply(resourceId, null));
    await eventually(
      async () => ((await eventsFor(resourceId)).length === 1 ? true : undefined),
      10_000,
      "the first event",
    );
    const outcome = await b.services.inbox.handled("dv-nett", cmd.id);
    const eventId = String(outcome?.envelope.id);
    const announcedAt = async () =>
      (
        await b.t.admin.query<{ at: Date | null }>(
          "SELECT published_at AS at FROM runtime.outbox WHERE id = $1",
          [eventId],
        )
      )[0]?.at;
    const first = await eventually(() => announcedAt().then((at) => at ?? undefined));
    // Re-sent from PostgreSQL after the duplicate window: a new Nats-Msg-Id, the same envelope.
    await b.nats.js.publish("dv.nett.cmd.apply", JSON.stringify(cmd), { msgID: newId() });
    await eventually(async () =>
      (await b.services.outbox.backlog()).count === 0 &&
      (await b.nats.jsm.streams.info(STREAMS.commands)).state.messages === 0
        ? true
        : undefined,
    );
    // The event it recorded the first time is announced again (same id), nothing applied twice.
    await eventually(async () => {
      const at = await announcedAt();
      return at && at > first ? true : undefined;
    });
    expect(await b.services.simulator.effectsOf(resourceId)).toHaveLength(1);
    expect(await b.services.simulator.duplicateEffects()).toEqual([]);
  });

  it("skip a command whose task has ended, whether the task starts with the effect or before the work", async () => {
    // nett's simulated driver here has no latency: its task starts in the effect's transaction.
    // A maskin worker with latency records `started` before the work instead.
    await b.worker("maskin", { simLatencyMs: 50 });
    const cancel = async () => {
      const task = await b.task();
      await inTransaction(b.t.db, (tx) =>
        b.services.tasks.transition(tx, task.id, "cancelled", { actor: "user:test" }),
      );
      return task;
    };
    const [quick, slow, healthy] = [await cancel(), await cancel(), await b.task()];
    const provision = (resourceId: string, taskId: string) => ({
      resource_kind: "server",
      resource_id: resourceId,
      generation: 1,
      task_id: taskId,
      step: "main",
      server_id: newId(),
      server_name: "s1",
      machine_class: "standard",
      image: "debian-12",
    });
    const commands = [
      {
        consumer: "dv-nett",
        cmd: await b.command("nett", "apply", apply(quick.resourceId, quick.id)),
      },
      {
        consumer: "dv-maskin",
        cmd: await b.command("maskin", "provision", provision(slow.resourceId, slow.id)),
      },
      {
        consumer: "dv-maskin",
        cmd: await b.command("maskin", "provision", provision(healthy.resourceId, healthy.id)),
      },
    ];
    for (const { consumer, cmd } of commands)
      await eventually(async () =>
        (await b.services.inbox.handled(consumer, cmd.id)) !== undefined ? true : undefined,
      );
    // The ended tasks' commands were recorded without an outcome and did nothing.
    expect(await b.services.inbox.handled("dv-nett", commands[0]?.cmd.id ?? "")).toBeNull();
    expect(await b.services.inbox.handled("dv-maskin", commands[1]?.cmd.id ?? "")).toBeNull();
    expect(await b.services.simulator.effectsOf(quick.resourceId)).toEqual([]);
    expect(await b.services.simulator.effectsOf(slow.resourceId)).toEqual([]);
    expect((await b.services.taskStore.get(quick.id)).state).toBe("cancelled");
    expect((await b.services.taskStore.get(slow.id)).state).toBe("cancelled");
    // The live one started and was carried out.
    expect((await b.services.taskStore.get(healthy.id)).state).toBe("started");
    expect(await b.services.simulator.effectsOf(healthy.resourceId)).toHaveLength(1);
    // Every one of them is done with in the outbox.
    const left = await b.t.admin.query<{ id: string }>(
      "SELECT id::text FROM runtime.outbox WHERE id = ANY($1::uuid[])",
      [commands.map((c) => c.cmd.id)],
    );
    expect(left).toEqual([]);
  });

  it("apply each of a burst once when one message of it arrives twice, in one batch", async () => {
    const spec = domainCommands.nett.apply;
    if (!spec) throw new Error("no nett.apply command");
    const envelopes = Array.from({ length: 60 }, () => {
      const resourceId = newId();
      return createEnvelope(spec.command, apply(resourceId, null), {
        id: newId(),
        time: new Date(),
        subject: resourceId,
        actor: "user:test",
        correlationId: newId(),
        datacenterId: "dc1",
      });
    });
    // Published straight to NATS, all at once, the 31st twice in a row under two message ids:
    // the worker pulls them together, and the copy lands in the batch of its original.
    const sent = [...envelopes.slice(0, 31), envelopes[30], ...envelopes.slice(31)];
    await Promise.all(
      sent.map((e) =>
        b.nats.js.publish(spec.command.subject, JSON.stringify(e), { msgID: newId() }),
      ),
    );
    await eventually(async () =>
      (await b.nats.jsm.streams.info(STREAMS.commands)).state.messages === 0 ? true : undefined,
    );
    for (const e of envelopes)
      expect(await b.services.simulator.effectsOf(e.subject)).toHaveLength(1);
    expect(await b.services.simulator.duplicateEffects()).toEqual([]);
  });

  it("retry transient failures with backoff and succeed, keeping every error", async () => {
    const resourceId = newId();
    await b.services.simulator.setFault({
      service: "nett",
      resourceId,
      mode: "transient",
      remaining: 2,
      message: "switch busy",
    });
    const cmd = await b.command("nett", "apply", apply(resourceId, null));
    await eventually(
      async () => ((await eventsFor(resourceId)).length === 1 ? true : undefined),
      10_000,
      "the event after retries",
    );
    expect(
      (await b.services.inbox.attempts("dv-nett", cmd.id)).map((a) => [a.attempt, a.message]),
    ).toEqual([
      [1, "injected transient fault: switch busy"],
      [2, "injected transient fault: switch busy"],
    ]);
    expect(await b.services.simulator.effectsOf(resourceId)).toHaveLength(1);
  });

  it("dead-letter a permanent failure at once, with its context, and fail the task", async () => {
    const task = await b.task();
    await b.services.simulator.setFault({
      service: "nett",
      resourceId: task.resourceId,
      mode: "permanent",
      message: "VLAN refused by the switch",
    });
    const cmd = await b.command("nett", "apply", apply(task.resourceId, task.id));
    const dead = await eventually(() => deadLetterFor(cmd.id), 10_000, "the dead letter");
    expect(dead).toMatchObject({
      state: "open",
      service: "nett",
      subject: "dv.nett.cmd.apply",
      type: "nett.network.apply",
      deliveryCount: 1,
      correlationId: cmd.correlation_id,
      taskId: task.id,
      reason: "permanent_failure: injected fault: VLAN refused by the switch",
    });
    expect(dead.envelope).toMatchObject({ id: cmd.id, data: { vlan_id: 100 } });
    expect(dead.errors).toEqual([
      expect.objectContaining({
        code: "permanent",
        message: "injected fault: VLAN refused by the switch",
      }),
    ]);
    expect(
      await eventually(async () =>
        (await b.services.taskStore.get(task.id)).state === "failed" ? true : undefined,
      ),
    ).toBe(true);
    expect((await b.services.taskStore.get(task.id)).reason).toBe(dead.reason);
    expect((await b.nats.jsm.streams.info(STREAMS.commands)).state.messages).toBe(0);
    expect(await b.services.simulator.effectsOf(task.resourceId)).toEqual([]);
  });

  it("dead-letter a command that keeps failing after the configured attempts, with every error", async () => {
    const resourceId = newId();
    await b.services.simulator.setFault({
      service: "nett",
      resourceId,
      mode: "transient",
      remaining: 99,
      message: "timeout",
    });
    const cmd = await b.command("nett", "apply", apply(resourceId, null));
    const dead = await eventually(() => deadLetterFor(cmd.id), 10_000, "the dead letter");
    expect(dead.deliveryCount).toBe(3);
    expect(dead.errors.map((e) => e.message)).toEqual(
      Array(3).fill("injected transient fault: timeout"),
    );
    expect(dead.reason).toBe(
      "retries_exhausted: 3 attempts, last: injected transient fault: timeout",
    );
  });

  it("dead-letter unparseable messages and payloads that break their schema, but accept unknown fields", async () => {
    await b.nats.js.publish("dv.nett.cmd.apply", "{not json", { msgID: "garbage-1" });
    const garbage = await eventually(
      () => deadLetterFor("garbage-1"),
      10_000,
      "the unparseable dead letter",
    );
    expect(garbage.reason).toMatch(/^invalid_message: /);
    expect(garbage.envelope).toEqual({ raw: "{not json" });

    const bad = await b.command("nett", "apply", apply(newId(), null));
    const tampered = { ...bad, id: newId(), data: { ...bad.data, vlan_id: "one hundred" } };
    await b.nats.js.publish("dv.nett.cmd.apply", JSON.stringify(tampered), { msgID: tampered.id });
    const schema = await eventually(
      () => deadLetterFor(tampered.id),
      10_000,
      "the schema dead letter",
    );
    expect(schema.reason).toContain("vlan_id");

    const resourceId = newId();
    const future = await b.command("nett", "apply", apply(resourceId, null));
    const extended = {
      ...future,
      id: newId(),
      extension: "x",
      data: { ...future.data, resource_id: resourceId, new_field: true },
    };
    await b.nats.js.publish("dv.nett.cmd.apply", JSON.stringify(extended), { msgID: extended.id });
    await eventually(
      async () => (await b.services.inbox.handled("dv-nett", extended.id)) ?? undefined,
      10_000,
      "the extended command",
    );
    expect(await deadLetterFor(extended.id)).toBeUndefined();
  });
});

describe("advisories", () => {
  it("dead-letter a command whose worker never answers, and remove it from the stream", async () => {
    const resourceId = newId();
    const cmd = await b.command("objekt", "create_bucket", {
      resource_kind: "bucket",
      resource_id: resourceId,
      generation: 1,
      task_id: null,
      step: "main",
      quota_bytes: 1024,
      versioning: false,
    });
    // Workers that take every delivery and die before answering, again and again (max_deliver 4):
    // they keep pulling, and the server gives up on the message.
    const consumer = await b.nats.js.consumers.get(STREAMS.commands, "dv-objekt");
    const deliveries: number[] = [];
    const dead = await eventually(
      async () => {
        const m = await consumer.next({ expires: 1_000 });
        if (m) deliveries.push(m.info.deliveryCount);
        return deadLetterFor(cmd.id);
      },
      30_000,
      "the advisory dead letter",
    );
    expect(deliveries).toEqual([1, 2, 3, 4]);
    expect(dead).toMatchObject({ service: "objekt", deliveryCount: 4 });
    expect(dead.reason).toMatch(/^max_deliveries: no answer after 4 deliveries/);
    await eventually(async () =>
      (await b.nats.jsm.streams.info(STREAMS.commands)).state.messages === 0 ? true : undefined,
    );
  });
});

// ADR 0012: a published row stays in the outbox — a command until a worker records it done, an
// event for the relay's retention — and the relay sends what it kept again when it reconnects.
describe("outbox retention", () => {
  const publishedAt = async (id: string) => {
    const [row] = await b.t.admin.query<{ published_at: Date | null }>(
      "SELECT published_at FROM runtime.outbox WHERE id = $1",
      [id],
    );
    return row ? row.published_at : undefined;
  };
  const bootstrap = (resourceId: string) => ({
    resource_kind: "cluster",
    resource_id: resourceId,
    generation: 1,
    task_id: null,
    step: "main",
    version: "1.31",
    servers: [],
    cidr: "10.1.0.0/24",
  });

  it("keeps a published command until its worker records it done, and an event only for the retention", async () => {
    // No plattform worker runs here: its command is published and waits, kept.
    const waiting = await b.command("plattform", "bootstrap", bootstrap(newId()));
    await eventually(async () => ((await publishedAt(waiting.id)) ? true : undefined));
    // A nett command is handled: its row goes with the transaction that records it.
    const handled = await b.command("nett", "apply", apply(newId(), null));
    await eventually(async () =>
      (await b.services.inbox.handled("dv-nett", handled.id)) !== undefined &&
      (await publishedAt(handled.id)) === undefined
        ? true
        : undefined,
    );
    expect((await b.services.outbox.backlog()).count).toBe(0);
    // A sweep with no retention takes every published event, and no command.
    await b.services.outbox.sweep(0);
    const kept = await b.t.admin.query<{ subject: string }>(
      "SELECT subject FROM runtime.outbox WHERE published_at IS NOT NULL",
    );
    expect(kept.map((r) => r.subject)).toEqual(["dv.plattform.cmd.bootstrap"]);
    expect((await b.services.outbox.backlog()).kept).toBe(1);
  });

  it("sends every kept row again when the relay reconnects to NATS", async () => {
    const kept = await b.command("plattform", "bootstrap", bootstrap(newId()));
    const first = await eventually(() => publishedAt(kept.id).then((at) => at ?? undefined));
    const sent = async () =>
      (await b.metrics.getSingleMetricAsString("dataverket_outbox_published_total")).match(
        /subject_family="dv\.plattform\.cmd"} (\d+)/,
      )?.[1];
    const before = Number(await sent());
    await b.nats.stopServer();
    await b.nats.startServer();
    // Marked unpublished on reconnect, published again, stored once (the duplicate window).
    await eventually(async () => {
      const at = await publishedAt(kept.id);
      return at && at > first && Number(await sent()) >= before + 2 ? true : undefined;
      // A relay pass caught by the restart waits out its publishes' timeouts (5 s) first.
    }, 60_000);
    // The plattform commands were never consumed: take them off the stream for the next file.
    await b.nats.jsm.streams.purge(STREAMS.commands, { filter: "dv.plattform.cmd.>" });
    const rows = await b.t.admin.query<{ id: string }>(
      "SELECT id::text FROM runtime.outbox WHERE subject LIKE 'dv.plattform.cmd.%'",
    );
    await inTransaction(b.t.db, (tx) =>
      b.services.outbox.done(
        tx,
        rows.map((r) => r.id),
      ),
    );
  });
});
