// Scenario nats-data-loss: a machine crash that loses what nats-server acknowledged but had not
// synced to disk (it fsyncs every second: ADR 0012). While a stream of 2,000 commands (600 in
// --quick) flows through a nett worker process (which relays the outbox; the producer keeps 50
// commands ahead of it, 400 (200) after the image, so NATS holds a backlog), the server is
// frozen (SIGSTOP), its store directory copied (`cp -a`: a point-in-time image) and thawed;
// commands go on being published, acknowledged and handled until 300 (100) more are applied or
// 3 s have passed; then the server is SIGKILLed, its store replaced by the image — every message,
// consumer ack and duplicate-window entry written after it is gone — and started again on the
// same port. The relay sees the reconnect and sends every row the outbox kept again (commands not
// done yet, events published in the last 10 s).
// Checked: every command acknowledged by the producer (its outbox row committed) was applied
// exactly once (the simulator's ledger) and is in the worker's inbox once, nothing was
// dead-lettered, the outbox drains and keeps no command, and every applied command's domain
// event is in the events stream after recovery. The run proves something only if the image lost
// messages of both streams (the stream sequences before the kill and after the restart say how
// many), commands published after the image were handled before the crash (their events were
// then only in the outbox) and others were not (only the outbox had them): checked too.
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboxMessage } from "../src/contexts/runtime/index.js";
import { inTransaction } from "../src/db/index.js";
import { STREAMS } from "../src/jetstream/index.js";
import { newId } from "../src/kernel/index.js";
import { createEnvelope, domainCommands, messageHeaders } from "../src/messaging/index.js";
import { eventually } from "../test/support/backbone.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import type { DvProcess } from "../test/support/process.js";
import { checkQueue } from "./support/checker.js";
import { twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const COMMANDS = size(2_000, 600);
/** Commands applied after the image before the crash (or 3 s, whichever comes first). */
const AFTER_IMAGE = size(300, 100);
const AFTER_IMAGE_MAX_MS = 3_000;
/** Commands the producer commits per transaction. */
const CHUNK = 10;
/**
 * Commands acknowledged but not applied yet, at most: what NATS holds for the worker. Until the
 * image, fewer than AFTER_IMAGE, so commands published after the image are handled before the
 * crash too (their events are then only in the outbox); after it, many more, so the crash also
 * loses commands not handled yet (which only the outbox has then).
 */
const WINDOW_BEFORE_IMAGE = 50;
const WINDOW_AFTER_IMAGE = size(400, 200);
const EVENT_SUBJECT = "dv.nett.evt.network.applied";

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

async function appliedCount(): Promise<number> {
  const [row] = await p.t.admin.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM simulator.effects",
  );
  return row?.n ?? 0;
}

/** The last sequence of the command and event streams (throws while the server is away). */
async function lastSeqs(jsm: JetStreamManager = p.nats.jsm): Promise<{
  commands: number;
  events: number;
}> {
  const [commands, events] = await Promise.all([
    jsm.streams.info(STREAMS.commands),
    jsm.streams.info(STREAMS.events),
  ]);
  return { commands: commands.state.last_seq, events: events.state.last_seq };
}

/**
 * The sequences of a server just started, read on a new connection: the worker's reconnects
 * after 500–750 ms, so nothing it re-sends has arrived yet — these are the image's.
 */
async function lastSeqsNow(): Promise<{ commands: number; events: number }> {
  const nc = await connect({ servers: p.nats.url });
  try {
    return await lastSeqs(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

/** `count` nett apply commands committed to the outbox in one transaction; their ids. */
async function produce(count: number): Promise<string[]> {
  const spec = domainCommands.nett.apply;
  if (!spec) throw new Error("no nett apply command");
  const rows: OutboxMessage[] = Array.from({ length: count }, (_, i) => {
    const resourceId = newId();
    const correlationId = newId();
    const envelope = createEnvelope(
      spec.command,
      {
        resource_kind: "network",
        resource_id: resourceId,
        generation: 1,
        task_id: null,
        step: "main",
        vlan_id: 100 + i,
        cidr: "10.0.0.0/28",
      },
      {
        id: newId(),
        time: new Date(),
        subject: resourceId,
        actor: "user:test",
        correlationId,
        datacenterId: "dc1",
      },
    );
    return {
      id: envelope.id,
      subject: spec.command.subject,
      envelope,
      headers: messageHeaders(correlationId),
    };
  });
  await inTransaction(p.t.db, (tx) => p.services.outbox.enqueue(tx, rows));
  return rows.map((r) => r.id);
}

/** Every event of the events stream on `EVENT_SUBJECT`: its id, command, sequence and time. */
async function storedEvents(): Promise<
  { id: string; commandId: string; seq: number; storedAtMs: number }[]
> {
  const info = await p.nats.jsm.streams.info(STREAMS.events);
  const last = info.state.last_seq;
  if (info.state.messages === 0) return [];
  const consumer = await p.nats.js.consumers.get(STREAMS.events, {
    filter_subjects: [EVENT_SUBJECT],
  });
  const found: { id: string; commandId: string; seq: number; storedAtMs: number }[] = [];
  const messages = await consumer.consume();
  // The bound only turns a stream that stops answering into a failure.
  const timer = setTimeout(() => void messages.close(), 60_000);
  try {
    for await (const m of messages) {
      const envelope = m.json<{ id: string; data: { command_id: string } }>();
      found.push({
        id: envelope.id,
        commandId: envelope.data.command_id,
        seq: m.seq,
        storedAtMs: m.info.timestampNanos / 1e6,
      });
      if (m.seq >= last || m.info.pending === 0) break;
    }
  } finally {
    clearTimeout(timer);
    await messages.close();
  }
  return found;
}

/** How many rows the relay said it sends again after reconnecting (its info log lines). */
function resentOnReconnect(worker: DvProcess): number {
  let total = 0;
  for (const line of `${worker.stdout()}\n${worker.stderr()}`.split("\n")) {
    if (!line.includes("sending the messages the outbox kept again")) continue;
    try {
      const entry = JSON.parse(line) as { count?: number; why?: string };
      if (entry.why?.startsWith("reconnected")) total += entry.count ?? 0;
    } catch {
      // Not a log line of ours.
    }
  }
  return total;
}

describe("nats-server crashes and loses what it had not synced", () => {
  it("the outbox sends it again: no command lost or applied twice, every event there", async () => {
    // 4 commands at a time, 10 ms each: slower than the producer could go, so NATS holds a
    // backlog of commands published but not handled yet; info level for the relay's re-send
    // lines.
    const worker = await p.spawn(["worker", "--service", "nett"], {
      DV_WORKER_CONCURRENCY: "4",
      DV_SIM_LATENCY_MS: "10",
      DV_LOG_LEVEL: "info",
    });
    const acknowledged: string[] = [];
    // A wait that runs out is not thrown at once: the checks below say what is missing, after the
    // run is recorded.
    const waited: string[] = [];
    let window = WINDOW_BEFORE_IMAGE;
    const producer = (async () => {
      while (acknowledged.length < COMMANDS) {
        // Paced by the worker: at most `window` commands ahead of it, so the stream flows for
        // the whole run, before the image, after it, and after the crash.
        await eventually(
          async () => (acknowledged.length - (await appliedCount()) <= window ? true : undefined),
          120_000,
          "the worker to catch up with the producer",
        );
        // A command is acknowledged once its outbox row is committed.
        acknowledged.push(...(await produce(Math.min(CHUNK, COMMANDS - acknowledged.length))));
      }
    })().catch((err: unknown) => void waited.push(String(err)));

    await eventually(
      async () => ((await appliedCount()) >= COMMANDS / 5 ? true : undefined),
      120_000,
      `${COMMANDS / 5} commands applied`,
    );

    // The image: the server frozen, its store copied, thawed. What the relay marks published
    // after this clock reading was sent after the image.
    const seqsAtImage = await lastSeqs();
    // Commands committed from here on are published after the image.
    const acknowledgedAtImage = acknowledged.length;
    const [clock] = await p.t.admin.query<{ at: Date }>("SELECT clock_timestamp() AS at");
    p.nats.freeze();
    let image: string;
    try {
      image = p.nats.snapshotStore();
    } finally {
      p.nats.thaw();
    }
    window = WINDOW_AFTER_IMAGE;
    const appliedAtImage = await appliedCount();

    // More commands published, acknowledged by NATS and handled, all lost with the crash.
    await eventually(
      async () => ((await appliedCount()) >= appliedAtImage + AFTER_IMAGE ? true : undefined),
      AFTER_IMAGE_MAX_MS,
      `${AFTER_IMAGE} more commands applied`,
    ).catch(() => undefined);
    const appliedAtKill = await appliedCount();
    const acknowledgedAtKill = [...acknowledged];
    // Published after the image and handled before the crash: NATS loses the command (harmless,
    // it is done) and its event, which only the outbox still has.
    const appliedBeforeKill = new Set(await appliedCommands());
    const eventsOnlyInOutbox = acknowledgedAtKill
      .slice(acknowledgedAtImage)
      .filter((id) => appliedBeforeKill.has(id)).length;
    const keptAtKill = await p.services.outbox.backlog();
    const [atRisk] = await p.t.admin.query<{ commands: number; events: number }>(
      `SELECT (count(*) FILTER (WHERE subject LIKE 'dv.%.cmd.%'))::int AS commands,
              (count(*) FILTER (WHERE subject NOT LIKE 'dv.%.cmd.%'))::int AS events
         FROM runtime.outbox WHERE published_at > $1`,
      [clock?.at],
    );
    const seqsAtKill = await lastSeqs();
    await p.nats.killServer();
    p.nats.restoreStore(image);
    await p.nats.startServer();
    const restartedAt = Date.now();
    const seqsAfterRestart = await lastSeqsNow();

    // Recovered: every command acknowledged before the crash applied.
    const pendingAtKill = new Set(acknowledgedAtKill);
    await eventually(
      async () => {
        const applied = new Set(await appliedCommands());
        return [...pendingAtKill].every((id) => applied.has(id)) ? true : undefined;
      },
      120_000,
      `the ${acknowledgedAtKill.length} commands acknowledged before the crash applied`,
    ).catch(() => undefined);
    const recoveryMs = Date.now() - restartedAt;
    await producer;
    await eventually(
      async () => ((await appliedCount()) >= COMMANDS ? true : undefined),
      120_000,
      `all ${COMMANDS} commands applied`,
    ).catch((err: unknown) => void waited.push(String(err)));
    const commandRows = async () =>
      (
        await p.t.admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM runtime.outbox WHERE subject LIKE 'dv.%.cmd.%'",
        )
      )[0]?.n ?? 0;
    await eventually(
      async () =>
        (await p.services.outbox.backlog()).count === 0 && (await commandRows()) === 0
          ? true
          : undefined,
      30_000,
      "the outbox to drain and keep no command",
    ).catch((err: unknown) => void waited.push(String(err)));
    const backlogAfter = await p.services.outbox.backlog();
    const commandsKept = await commandRows();

    const applied = await appliedCommands();
    const verdict = checkQueue({
      // Writing to PostgreSQL never failed here: every command attempted was acknowledged.
      attempted: acknowledged,
      acknowledged,
      applied,
    });
    const twice = await twiceApplied(p.t.admin);
    const [handled] = await p.t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM runtime.inbox WHERE consumer = 'dv-nett' AND message_id = ANY($1)",
      [acknowledged],
    );
    const dead = await p.services.deadLetterStore.list({}, { limit: 10 });

    // The design's claim for events: each applied command's event is in the stream.
    const events = await storedEvents();
    const eventIds = new Map<string, Set<string>>();
    for (const e of events)
      eventIds.set(e.commandId, (eventIds.get(e.commandId) ?? new Set()).add(e.id));
    const withoutEvent = [...new Set(applied)].filter((id) => !eventIds.has(id));
    const twoEvents = [...eventIds].filter(([, ids]) => ids.size > 1).map(([id]) => id);
    const storedTwice = events.length - [...eventIds.values()].reduce((n, s) => n + s.size, 0);
    // What the image held: the events stored before the restart.
    const imageEventsSeq = Math.max(
      0,
      ...events.filter((e) => e.storedAtMs < restartedAt).map((e) => e.seq),
    );
    const lostEvents = seqsAtKill.events - imageEventsSeq;
    const lostCommands = seqsAtKill.commands - seqsAfterRestart.commands;
    const resent = resentOnReconnect(worker);

    record({
      scenario: "nats-data-loss",
      faults: 1,
      operations: COMMANDS,
      lost: verdict.lost.length + withoutEvent.length,
      duplicated: verdict.duplicated.length + twice.length + twoEvents.length,
      violations:
        verdict.unexpected.length +
        dead.items.length +
        (COMMANDS - (handled?.n ?? 0)) +
        backlogAfter.count +
        commandsKept,
      recoveryMs,
      figures: {
        applied_at_image: appliedAtImage,
        applied_at_kill: appliedAtKill,
        command_seq_at_image: seqsAtImage.commands,
        command_seq_at_kill: seqsAtKill.commands,
        command_seq_after_restart: seqsAfterRestart.commands,
        commands_lost_by_image: lostCommands,
        event_seq_at_kill: seqsAtKill.events,
        event_seq_of_image: imageEventsSeq,
        events_lost_by_image: lostEvents,
        commands_published_after_image_not_done: atRisk?.commands ?? 0,
        events_published_after_image: atRisk?.events ?? 0,
        events_only_in_outbox: eventsOnlyInOutbox,
        outbox_kept_at_kill: keptAtKill.kept,
        resent_on_reconnect: resent,
        events_stored_twice: storedTwice,
      },
    });
    expect(verdict).toMatchObject({ lost: [], duplicated: [], unexpected: [], valid: true });
    expect(withoutEvent).toEqual([]);
    expect(twice).toEqual([]);
    expect(handled).toEqual({ n: COMMANDS });
    expect(dead).toEqual({ items: [] });
    expect({ backlog: backlogAfter.count, commands: commandsKept }).toEqual({
      backlog: 0,
      commands: 0,
    });
    expect(twoEvents).toEqual([]);
    expect(waited).toEqual([]);
    // The crash lost what it was meant to: acknowledged messages of both streams, events of
    // commands done and commands not handled yet, which only the outbox could send again.
    expect(lostCommands).toBeGreaterThan(0);
    expect(lostEvents).toBeGreaterThan(0);
    expect(eventsOnlyInOutbox).toBeGreaterThan(0);
    expect(atRisk?.commands ?? 0).toBeGreaterThan(0);
    expect(resent).toBeGreaterThan(0);
  });
});
