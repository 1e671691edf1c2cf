// Scenario poison-batch: poison inside the worker's batches. One nett worker process with 64
// commands at once (so deliveries are recorded in group commits of many), fed 8 bursts of 250
// messages (3 of 120 in --quick); each burst's commands are committed to the outbox in one
// transaction, so its deliveries arrive together. A tenth of each burst, at random positions, is
// poison of five kinds: a device that refuses (permanent fault), a device that fails every time
// (transient fault that never clears: retries exhausted), bytes that are not JSON (with a NUL and
// bytes that are not UTF-8), an envelope whose payload breaks the command's schema, and a command
// that passes the schema and the driver's prepare but whose effect PostgreSQL refuses (a NUL in
// `cidr`, which jsonb cannot hold): its failure happens inside the batch's effect transaction, so
// the batch fails and the worker retries it one message at a time. The bytes and the last kind
// are published straight to NATS (the outbox, jsonb, cannot hold them), each in the middle of the
// relay's publishing of its burst, where the plan puts it.
// Checked: every poison message is in the dead-letter store exactly once, with its envelope (or
// raw bytes), its correlation id, every error, the configured deliveries and the reason of its
// kind; no healthy command is; each healthy command was applied exactly once (the simulator's
// ledger) and is in the worker's inbox once; the outbox has no command row left.
import { headers as natsHeaders } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboxMessage } from "../src/contexts/runtime/index.js";
import { inTransaction } from "../src/db/index.js";
import { STREAMS } from "../src/jetstream/index.js";
import { newId } from "../src/kernel/index.js";
import {
  createEnvelope,
  domainCommands,
  type Envelope,
  messageHeaders,
} from "../src/messaging/index.js";
import { eventually, FAST_WORKERS } from "../test/support/backbone.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { checkQueue } from "./support/checker.js";
import { twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const BURSTS = size(8, 3);
const BURST = size(250, 120);
const POISON_PER_BURST = size(25, 10);
const CONCURRENCY = 64;
const KINDS = ["transient", "permanent", "unparseable", "schema", "effect"] as const;
type Kind = (typeof KINDS)[number];
const SUBJECT = "dv.nett.cmd.apply";

/** What the dead letter of each kind says, and after how many deliveries. */
const EXPECTED: Record<Kind, { reason: RegExp; deliveries: number; error: RegExp }> = {
  transient: {
    reason: /^retries_exhausted: 3 attempts, last: injected transient fault: chaos/,
    deliveries: FAST_WORKERS.maxAttempts,
    error: /^injected transient fault: chaos/,
  },
  permanent: {
    reason: /^permanent_failure: injected fault: chaos/,
    deliveries: 1,
    error: /^injected fault: chaos/,
  },
  unparseable: { reason: /^invalid_message: /, deliveries: 1, error: /JSON/ },
  schema: { reason: /^invalid_message: .*vlan_id/s, deliveries: 1, error: /vlan_id/ },
  // The effect's statement failed (the driver's insert of the device's state): bad data, which
  // fails the same way every time, so dead-lettered at once, with PostgreSQL's reason.
  effect: {
    reason: /^permanent_failure: PostgreSQL refused the effect: .*Unicode.*\(SQLSTATE 22P05\)/s,
    deliveries: 1,
    error: /^PostgreSQL refused the effect: .*Unicode.*\(SQLSTATE 22P05\)$/s,
  },
};

/** A poison message sent, and what its dead letter must hold. */
interface Poison {
  readonly kind: Kind;
  readonly id: string;
  /** The envelope sent; undefined for bytes that are not one. */
  readonly envelope: Envelope | undefined;
}

let p: Plane;
beforeAll(async () => {
  // No relay in this process: the worker process publishes the outbox.
  p = await startPlane({ relay: false });
});
afterAll(async () => p.close());

/** A nett apply command's envelope, built as a reconciler builds one (as `Plane.command` does). */
function command(cidr = "10.0.0.0/28"): Envelope {
  const spec = domainCommands.nett.apply;
  if (!spec) throw new Error("no nett apply command");
  const resourceId = newId();
  return createEnvelope(
    spec.command,
    {
      resource_kind: "network",
      resource_id: resourceId,
      generation: 1,
      task_id: null,
      step: "main",
      vlan_id: 100,
      cidr,
    },
    {
      id: newId(),
      time: new Date(),
      subject: resourceId,
      actor: "user:test",
      correlationId: newId(),
      datacenterId: "dc1",
    },
  );
}

const row = (envelope: Envelope | Record<string, unknown>): OutboxMessage => ({
  id: String(envelope.id),
  subject: SUBJECT,
  envelope,
  headers: messageHeaders(String(envelope.correlation_id)),
});

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

// A type, not an interface: the admin database's rows are records.
type DeadLetterRow = {
  message_id: string;
  subject: string;
  reason: string;
  delivery_count: number;
  correlation_id: string;
  envelope: Record<string, unknown>;
  errors: { at: string; code: string; message: string }[];
};

/** What is wrong with the dead letter of `poison` (empty: nothing). */
function contextProblems(poison: Poison, dl: DeadLetterRow): string[] {
  const problems: string[] = [];
  const expected = EXPECTED[poison.kind];
  if (!expected.reason.test(dl.reason)) problems.push(`reason ${dl.reason.slice(0, 200)}`);
  if (dl.delivery_count !== expected.deliveries)
    problems.push(`delivery_count ${dl.delivery_count}, not ${expected.deliveries}`);
  if (dl.subject !== SUBJECT) problems.push(`subject ${dl.subject}`);
  // Every error: one per delivery, each saying what failed.
  if (dl.errors.length !== expected.deliveries)
    problems.push(`${dl.errors.length} errors, not ${expected.deliveries}`);
  for (const e of dl.errors)
    if (!expected.error.test(e.message) || !e.code || !e.at)
      problems.push(`error ${JSON.stringify(e).slice(0, 200)}`);
  if (poison.envelope) {
    const sent = poison.envelope;
    const kept = dl.envelope;
    const data = (kept.data ?? {}) as Record<string, unknown>;
    if (kept.id !== sent.id) problems.push("envelope id");
    if (kept.type !== sent.type) problems.push("envelope type");
    if (data.resource_id !== sent.data.resource_id) problems.push("envelope resource_id");
    if (dl.correlation_id !== sent.correlation_id) problems.push("correlation id");
    if (poison.kind === "schema" && data.vlan_id !== "one hundred") problems.push("vlan_id");
    // PostgreSQL cannot hold the NUL: what it does hold must still show where it was.
    if (poison.kind === "effect" && !String(data.cidr).startsWith("10.0.0.0/28"))
      problems.push(`cidr ${JSON.stringify(data.cidr)}`);
  } else {
    const raw = dl.envelope.raw;
    if (typeof raw !== "string" || !raw.includes(`{not json ${poison.id}`))
      problems.push(`raw ${JSON.stringify(raw)?.slice(0, 200)}`);
    // No correlation id in bytes: the message id stands in for it.
    if (dl.correlation_id !== poison.id) problems.push("correlation id");
  }
  return problems;
}

describe("poison inside batches", () => {
  it("each poison message is dead-lettered once with its context; each healthy one applied once", async () => {
    await p.spawn(["worker", "--service", "nett"], {
      DV_WORKER_CONCURRENCY: String(CONCURRENCY),
    });
    const healthy: string[] = [];
    const poison = new Map<string, Poison>();
    const appliedCount = async () =>
      (
        await p.t.admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM simulator.effects WHERE message_id = ANY($1)",
          [healthy],
        )
      )[0]?.n ?? 0;

    // A wait that runs out is not thrown at once: the checks below say what is missing, after the
    // run is recorded.
    const waited: string[] = [];
    const until = (check: () => Promise<true | undefined>, timeoutMs: number, what: string) =>
      eventually(check, timeoutMs, what).catch((err: unknown) => {
        waited.push(String(err));
      });

    let sentAt = Date.now();
    for (let burst = 0; burst < BURSTS; burst++) {
      const plan = shuffle<"healthy" | Kind>([
        ...Array<"healthy">(BURST - POISON_PER_BURST).fill("healthy"),
        ...Array.from(
          { length: POISON_PER_BURST },
          (_, i) => KINDS[(burst * POISON_PER_BURST + i) % KINDS.length] as Kind,
        ),
      ]);
      // Through the outbox, in one transaction: healthy commands, the devices' faults and the
      // schema breakers. Straight to NATS: what the outbox cannot hold.
      const rows: OutboxMessage[] = [];
      // Each goes out once as many of the burst's rows as precede it in the plan have.
      const direct: {
        id: string;
        payload: string | Uint8Array;
        correlationId?: string;
        after: number;
      }[] = [];
      for (const kind of plan) {
        switch (kind) {
          case "healthy": {
            const envelope = command();
            healthy.push(envelope.id);
            rows.push(row(envelope));
            break;
          }
          case "transient":
          case "permanent": {
            const envelope = command();
            await p.services.simulator.setFault({
              service: "nett",
              resourceId: String(envelope.data.resource_id),
              mode: kind,
              remaining: 1_000,
              message: "chaos",
            });
            poison.set(envelope.id, { kind, id: envelope.id, envelope });
            rows.push(row(envelope));
            break;
          }
          case "schema": {
            const good = command();
            const tampered = { ...good, data: { ...good.data, vlan_id: "one hundred" } };
            poison.set(good.id, { kind, id: good.id, envelope: tampered });
            rows.push(row(tampered));
            break;
          }
          case "unparseable": {
            const id = `garbage-${newId()}`;
            const bytes = Buffer.concat([
              Buffer.from([0x00, 0xff, 0xfe]),
              Buffer.from(`{not json ${id}`),
            ]);
            poison.set(id, { kind, id, envelope: undefined });
            direct.push({ id, payload: bytes, after: rows.length });
            break;
          }
          case "effect": {
            const envelope = command("10.0.0.0/28\u0000");
            poison.set(envelope.id, { kind, id: envelope.id, envelope });
            direct.push({
              id: envelope.id,
              payload: JSON.stringify(envelope),
              correlationId: envelope.correlation_id,
              after: rows.length,
            });
            break;
          }
        }
      }
      sentAt = Date.now();
      // The commit wakes the worker's relay, which publishes the rows together; the rest are
      // published in between, each once the relay's publishes of this burst (seen on the
      // subject) have reached its place in the plan.
      const relayed = new Set(rows.map((r) => r.id));
      let seen = 0;
      const places = new Map<number, (() => void)[]>();
      // The bound only keeps a relay that stopped from hanging the run: the checks say the rest.
      const reached = (n: number) =>
        n <= seen
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, 60_000);
              const done = () => {
                clearTimeout(timer);
                resolve();
              };
              places.set(n, [...(places.get(n) ?? []), done]);
            });
      const watch = p.nats.nc.subscribe(SUBJECT, {
        callback: (_err, msg) => {
          if (!relayed.has(msg.headers?.get("Nats-Msg-Id") ?? "")) return;
          seen++;
          for (const resolve of places.get(seen) ?? []) resolve();
          places.delete(seen);
        },
      });
      await p.nats.nc.flush();
      await Promise.all([
        inTransaction(p.t.db, (tx) => p.services.outbox.enqueue(tx, rows)),
        ...direct.map(async (d) => {
          await reached(d.after);
          const h = natsHeaders();
          for (const [k, v] of Object.entries(messageHeaders(d.correlationId ?? d.id))) h.set(k, v);
          await p.nats.js.publish(SUBJECT, d.payload, { msgID: d.id, headers: h });
        }),
      ]);
      watch.unsubscribe();
      // The next burst comes once this one's healthy commands are applied (its poison may still
      // be retried: it then meets the next burst's deliveries).
      const expected = healthy.length;
      await until(
        async () => ((await appliedCount()) >= expected ? true : undefined),
        120_000,
        `burst ${burst + 1}: ${expected} healthy commands applied`,
      );
    }

    const deadLetters = () =>
      p.t.admin.query<DeadLetterRow>(
        `SELECT message_id, subject, reason, delivery_count, correlation_id, envelope, errors
           FROM runtime.dead_letters`,
      );
    await until(
      async () => ((await deadLetters()).length >= poison.size ? true : undefined),
      120_000,
      `${poison.size} dead letters`,
    );
    // Settled: nothing left to deliver or waiting for an ack, so no dead letter can still come;
    // and the outbox holds no command (each was done, or dead-lettered).
    await until(
      async () => {
        const consumer = await p.nats.jsm.consumers.info(STREAMS.commands, "dv-nett");
        return consumer.num_pending === 0 && consumer.num_ack_pending === 0 ? true : undefined;
      },
      30_000,
      "the nett consumer to have nothing pending",
    );
    const commandRows = async () =>
      (
        await p.t.admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM runtime.outbox WHERE subject LIKE 'dv.%.cmd.%'",
        )
      )[0]?.n ?? 0;
    const outboxLeft = await eventually(
      async () => {
        const backlog = await p.services.outbox.backlog();
        const commands = await commandRows();
        return backlog.count === 0 && commands === 0 ? { backlog, commands } : undefined;
      },
      30_000,
      "the outbox to hold no command",
    ).catch(async () => ({
      backlog: await p.services.outbox.backlog(),
      commands: await commandRows(),
    }));
    const settledMs = Date.now() - sentAt;

    const dead = await deadLetters();
    const byId = new Map<string, DeadLetterRow[]>();
    for (const d of dead) byId.set(d.message_id, [...(byId.get(d.message_id) ?? []), d]);
    const missing = [...poison.keys()].filter((id) => !byId.has(id));
    const deadTwice = [...byId].filter(([, rows]) => rows.length > 1).map(([id]) => id);
    const badContext = [...poison.values()].flatMap((x) => {
      const d = byId.get(x.id)?.[0];
      const problems = d ? contextProblems(x, d) : [];
      return problems.length ? [{ kind: x.kind, id: x.id, problems }] : [];
    });
    const healthyDead = healthy.filter((id) => byId.has(id));
    const applied = (
      await p.t.admin.query<{ message_id: string }>(
        "SELECT message_id::text FROM simulator.effects",
      )
    ).map((r) => r.message_id);
    const verdict = checkQueue({ attempted: healthy, acknowledged: healthy, applied });
    const twice = await twiceApplied(p.t.admin);
    const [inbox] = await p.t.admin.query<{ n: number; ids: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT message_id)::int AS ids FROM runtime.inbox
        WHERE consumer = 'dv-nett' AND message_id = ANY($1) AND outcome IS NOT NULL`,
      [healthy],
    );
    // Batches: the healthy commands recorded in one transaction share its start time.
    const [batches] = await p.t.admin.query<{ batches: number; largest: number; alone: number }>(
      `SELECT count(*)::int AS batches, max(n)::int AS largest,
              (count(*) FILTER (WHERE n = 1))::int AS alone
         FROM (SELECT handled_at, count(*) AS n FROM runtime.inbox
                WHERE consumer = 'dv-nett' AND message_id = ANY($1) GROUP BY handled_at) b`,
      [healthy],
    );
    const kinds = Object.fromEntries(
      KINDS.map((k) => [k, [...poison.values()].filter((x) => x.kind === k).length]),
    );

    record({
      scenario: "poison-batch",
      faults: poison.size,
      operations: healthy.length + poison.size,
      lost: verdict.lost.length + missing.length,
      duplicated: verdict.duplicated.length + twice.length + deadTwice.length,
      violations:
        healthyDead.length +
        badContext.length +
        verdict.unexpected.length +
        (healthy.length - (inbox?.ids ?? 0)) +
        ((inbox?.n ?? 0) - (inbox?.ids ?? 0)) +
        outboxLeft.commands +
        outboxLeft.backlog.count,
      recoveryMs: settledMs,
      figures: {
        bursts: BURSTS,
        burst_size: BURST,
        ...Object.fromEntries(Object.entries(kinds).map(([k, n]) => [`poison_${k}`, n])),
        dead_letters: dead.length,
        healthy_dead_lettered: healthyDead.length,
        batches: batches?.batches ?? 0,
        largest_batch: batches?.largest ?? 0,
        healthy_committed_alone: batches?.alone ?? 0,
      },
    });
    expect(missing).toEqual([]);
    expect(waited).toEqual([]);
    expect(deadTwice).toEqual([]);
    expect(badContext).toEqual([]);
    expect(healthyDead).toEqual([]);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], unexpected: [], valid: true });
    expect(twice).toEqual([]);
    expect(inbox).toEqual({ n: healthy.length, ids: healthy.length });
    expect(outboxLeft).toMatchObject({ commands: 0, backlog: { count: 0 } });
    // The scenario means something only if commands were recorded in batches.
    expect(batches?.largest ?? 0).toBeGreaterThan(1);
  });
});
