import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { Counter, Histogram } from "prom-client";
import type { InboxStore, Outcome, OutboxMessage, OutboxStore } from "../contexts/runtime/index.js";
import {
  type Database,
  inTransaction,
  isDatabaseUnavailable,
  isOutage,
  sqlStateOf,
} from "../db/index.js";
import { GroupCommit, type IdGenerator, type Settled } from "../kernel/index.js";
import {
  type CommandSpec,
  createEnvelope,
  domainCommands,
  type Envelope,
  HEADERS,
  MessageError,
  messageHeaders,
  messages,
  traceIdOf,
  workerConsumer,
  type WorkerService,
} from "../messaging/index.js";
import {
  failSpan,
  inSpan,
  type Logger,
  metricOnce,
  type Registry,
  type Span,
  SpanKind,
  traceparentOf,
} from "../observability/index.js";
import type { DeadLetterService, TaskEventContext, TaskService } from "../workflow/index.js";
import { type Driver, type DriverRequest, PermanentDriverError } from "./driver.js";

/** Options of {@link Worker}. */
export interface WorkerOptions {
  readonly service: WorkerService;
  readonly db: Database;
  readonly js: JetStreamClient;
  readonly driver: Driver;
  readonly inbox: InboxStore;
  readonly outbox: OutboxStore;
  readonly tasks: TaskService;
  readonly deadLetters: DeadLetterService;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly newId: IdGenerator;
  readonly now: () => Date;
  readonly random: () => number;
  /** Commands handled at once. */
  readonly concurrency: number;
  /** Attempts before a transiently failing command is dead-lettered. */
  readonly maxAttempts: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  /** The consumer's ack wait: long work calls `working()` well within it. */
  readonly ackWaitMs: number;
  /** Stream holding the commands (default `DV_COMMANDS`). */
  readonly stream?: string;
  /**
   * Deliveries pulled ahead of the work (JetStream's pull buffer; graphile-worker's local queue).
   * Default: twice `concurrency`. A pulled message's ack wait is running, so keep it within what
   * `concurrency` commands can work through in `ackWaitMs`.
   */
  readonly prefetch?: number;
  /** Most commands recorded in one transaction (default: `prefetch`). */
  readonly batchSize?: number;
}

const COMMON = new Set(["resource_kind", "resource_id", "generation", "task_id", "step"]);

/** Thrown inside an effects transaction when other deliveries of some messages committed first. */
class AlreadyHandled extends Error {
  readonly ids: ReadonlySet<string>;
  constructor(ids: ReadonlySet<string>) {
    super(`${ids.size} message(s) handled by another delivery`);
    this.ids = ids;
  }
}

/** The message of the PostgreSQL error in `err`'s cause chain. */
function databaseCause(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    if (typeof (e as { code?: unknown }).code === "string" && !e.message.startsWith("Failed query"))
      return e.message;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** A task to start before its command's work. */
interface StartItem {
  readonly taskId: string;
  readonly actor: string;
  readonly message: string;
  readonly context: TaskEventContext;
}

/** A command whose effect is to be recorded (`apply`), or recorded as skipped (`skip`). */
interface Effect {
  readonly kind: "apply" | "skip";
  readonly envelope: Envelope;
  readonly spec: CommandSpec;
  readonly request: DriverRequest;
  readonly taskId: string | null;
  /** Its task's `started`, recorded with the effect; absent when recorded before the work. */
  readonly start: { message: string; context: TaskEventContext } | undefined;
  readonly traceparent: string | undefined;
}

type EffectOutcome = "done" | "duplicate" | "skipped";

/**
 * Runs `together` over all items; when that fails for a reason other than an outage of the
 * database, over each item alone, so a failure belongs to the item that causes it.
 */
async function isolated<I, R>(
  items: I[],
  together: (batch: I[]) => Promise<R[]>,
  isOutage: (err: unknown) => Promise<boolean>,
): Promise<Settled<R>[]> {
  try {
    const values = await together(items);
    return values.map((value) => ({ ok: true, value }));
  } catch (error) {
    if (items.length === 1 || (await isOutage(error)))
      return items.map(() => ({ ok: false, error }));
  }
  const each: Settled<R>[] = [];
  for (const item of items) {
    try {
      const [value] = await together([item]);
      each.push({ ok: true, value: value as R });
    } catch (error) {
      each.push({ ok: false, error });
    }
  }
  return each;
}

/**
 * A domain worker (`dv worker --service nett`): pulls its service's commands from JetStream and
 * carries each out once in effect. Commands are worked on concurrently, each on its own; what
 * they change is recorded together (group commit): the commands that finished while the previous
 * transaction ran share the next — their tasks' `started`, effects, inbox records, events, and
 * their outbox rows marked done. A redelivered message re-announces the recorded event instead of
 * acting twice. Transient failures are retried with bounded exponential backoff and full jitter;
 * permanent ones, unparseable messages and exhausted retries become dead letters with every
 * error, and their task fails — one message's failure never fails, doubles or holds back the
 * others of its batch.
 */
export class Worker {
  readonly #o: WorkerOptions;
  readonly #consumer: string;
  readonly #commands: Map<string, CommandSpec>;
  readonly #handled: Counter<"service" | "outcome">;
  #stopping = false;
  readonly #deliveries: Counter<"service" | "kind">;
  readonly #duration: Histogram<"type">;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #prefetch: number;
  /** Commands being worked on (prepared); those waiting for their batch's commit are not. */
  #working = 0;
  #slotFreed: (() => void) | undefined;
  readonly #starts: GroupCommit<StartItem, boolean>;
  readonly #effects: GroupCommit<Effect, EffectOutcome>;

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#consumer = workerConsumer(options.service);
    this.#commands = new Map(
      Object.values(domainCommands[options.service]).map((spec) => [spec.command.type, spec]),
    );
    this.#prefetch = Math.max(2, options.prefetch ?? options.concurrency * 2);
    const batch = Math.max(1, options.batchSize ?? this.#prefetch);
    this.#starts = new GroupCommit((items) => this.#commitStarts(items), batch);
    this.#effects = new GroupCommit((items) => this.#commitEffects(items), batch);
    this.#handled = metricOnce(
      options.metrics,
      "dataverket_worker_commands_total",
      () =>
        new Counter({
          name: "dataverket_worker_commands_total",
          help: "Commands a worker finished, by outcome (done, duplicate, retry, dead_letter, skipped)",
          labelNames: ["service", "outcome"] as const,
          registers: [options.metrics],
        }),
    );
    this.#deliveries = metricOnce(
      options.metrics,
      "dataverket_nats_deliveries_total",
      () =>
        new Counter({
          name: "dataverket_nats_deliveries_total",
          help: "Command deliveries consumed from JetStream: first deliveries and redeliveries",
          labelNames: ["service", "kind"] as const,
          registers: [options.metrics],
        }),
    );
    this.#duration = metricOnce(
      options.metrics,
      "dataverket_worker_command_duration_seconds",
      () =>
        new Histogram({
          name: "dataverket_worker_command_duration_seconds",
          help: "Time from receiving a command to acking it",
          labelNames: ["type"] as const,
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
          registers: [options.metrics],
        }),
    );
  }

  /** Starts consuming; returns once the consumer is attached. */
  async start(): Promise<void> {
    const consumer = await this.#o.js.consumers.get(
      this.#o.stream ?? "DV_COMMANDS",
      this.#consumer,
    );
    this.#messages = await consumer.consume({ max_messages: this.#prefetch });
    this.#loop = this.#run(this.#messages);
    this.#o.log.info(
      { consumer: this.#consumer, concurrency: this.#o.concurrency },
      "worker consuming commands",
    );
  }

  /** Stops pulling, lets the commands in flight finish (their acks included), then returns. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await this.#messages?.close();
    await this.#loop;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #run(iterator: ConsumerMessages): Promise<void> {
    for await (const msg of iterator) {
      // `concurrency` bounds the commands being worked on; a command that only waits for its
      // batch's commit has given its place to the next.
      while (this.#working >= this.#o.concurrency)
        await new Promise<void>((resolve) => (this.#slotFreed = resolve));
      this.#working++;
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        this.#working--;
        const freed = this.#slotFreed;
        this.#slotFreed = undefined;
        freed?.();
      };
      const work = this.#handleHolding(msg, release)
        .catch((err: unknown) => {
          this.#o.log.error(
            { err, seq: msg.seq },
            "command handling failed unexpectedly; it will be redelivered",
          );
          msg.nak(this.#backoff(msg.info.deliveryCount));
        })
        .finally(release);
      this.#inFlight.add(work);
      void work.finally(() => this.#inFlight.delete(work));
    }
  }

  /**
   * Handles a delivery; while the database cannot be reached, holds it (in progress, so
   * JetStream neither redelivers it nor counts a delivery) and tries again, 250 ms to 5 s
   * apart. Burning deliveries on an outage of our own would dead-letter healthy commands and
   * fail their tasks after a PostgreSQL restart. A stopping worker lets it go back instead.
   */
  async #handleHolding(msg: JsMsg, release: () => void): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        return await this.#handle(msg, release);
      } catch (err) {
        if (this.#stopping || !isDatabaseUnavailable(err)) throw err;
        const wait = Math.min(5_000, 250 * 2 ** Math.min(round, 5));
        this.#o.log.warn(
          { err, seq: msg.seq, retry_in_ms: wait },
          "the database is unavailable; holding the command and trying again",
        );
        this.#handled.inc({ service: this.#o.service, outcome: "held" });
        msg.working();
        const keepAlive = setInterval(() => msg.working(), Math.max(200, this.#o.ackWaitMs / 3));
        await new Promise((r) => setTimeout(r, wait));
        clearInterval(keepAlive);
      }
    }
  }

  #backoff(attempt: number): number {
    const cap = Math.min(
      this.#o.backoffMaxMs,
      this.#o.backoffBaseMs * 2 ** Math.max(0, attempt - 1),
    );
    return Math.round(this.#o.random() * cap);
  }

  /** Handles one delivery in a consumer span, a child of the span that published it. */
  #handle(msg: JsMsg, release: () => void): Promise<void> {
    return inSpan(
      `process ${msg.subject}`,
      {
        kind: SpanKind.CONSUMER,
        parent: msg.headers?.get(HEADERS.traceparent) || null,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "process",
          "messaging.destination.name": msg.subject,
          "messaging.consumer.group.name": this.#consumer,
          "messaging.message.id": msg.headers?.get("Nats-Msg-Id") ?? "",
          "messaging.nats.delivery_count": msg.info.deliveryCount,
        },
      },
      (span) => this.#process(msg, span, release),
    );
  }

  async #process(msg: JsMsg, span: Span, release: () => void): Promise<void> {
    const started = performance.now();
    const attempt = msg.info.deliveryCount;
    this.#deliveries.inc({ service: this.#o.service, kind: attempt > 1 ? "redelivery" : "first" });
    // What this command causes continues the trace from this span.
    const traceparent = traceparentOf(span);
    const headerId = msg.headers?.get("Nats-Msg-Id") || `${msg.info.stream}:${msg.seq}`;

    let envelope: Envelope;
    let spec: CommandSpec | undefined;
    let raw: unknown;
    try {
      raw = JSON.parse(msg.string());
      const parsed = messages.parse(raw);
      envelope = parsed.envelope;
      spec = this.#commands.get(parsed.definition.type);
      if (!spec)
        throw new MessageError(
          "unknown_type",
          `${parsed.definition.type} is not a ${this.#o.service} command`,
        );
      envelope = {
        ...envelope,
        data: { schema_version: parsed.definition.version, ...parsed.data },
      };
    } catch (err) {
      // Unparseable or not ours: no retry will help.
      const message = err instanceof Error ? err.message : String(err);
      await this.#deadLetter(msg, {
        messageId:
          typeof (raw as { id?: unknown })?.id === "string"
            ? String((raw as { id: string }).id)
            : headerId,
        envelope:
          raw && typeof raw === "object" && !Array.isArray(raw)
            ? (raw as Record<string, unknown>)
            : { raw: msg.string().slice(0, 10_000) },
        errors: [
          {
            at: this.#o.now().toISOString(),
            code: err instanceof MessageError ? err.reason : "unparseable",
            message,
          },
        ],
        reason: `invalid_message: ${message}`,
        traceparent,
      });
      return;
    }

    const data = envelope.data;
    const taskId = typeof data.task_id === "string" ? data.task_id : null;
    const traceId = traceIdOf(traceparent);
    // The command's logger is made when something is logged: most commands log nothing at the
    // default level, and a child logger per message cost more CPU than handling it.
    let child: Logger | undefined;
    const log = (): Logger =>
      (child ??= this.#o.log.child({
        correlation_id: envelope.correlation_id,
        ...(traceId ? { trace_id: traceId } : {}),
        message_id: envelope.id,
        type: envelope.type,
        attempt,
        ...(taskId ? { task_id: taskId } : {}),
        ...(envelope.tenant_id ? { tenant_id: envelope.tenant_id } : {}),
      }));

    // A redelivery may have been handled already (the worker died between commit and ack):
    // announce again what it did, and do nothing else. A first delivery is checked by the
    // inbox insert of its batch instead, which costs no statement of its own.
    if (attempt > 1 && (await this.#reannounce(envelope, traceparent))) {
      msg.ack();
      this.#handled.inc({ service: this.#o.service, outcome: "duplicate" });
      return;
    }

    const request: DriverRequest = {
      service: this.#o.service,
      operation: spec.operation,
      resourceKind: String(data.resource_kind),
      resourceId: String(data.resource_id),
      generation: Number(data.generation),
      step: String(data.step),
      data: Object.fromEntries(
        Object.entries(data).filter(([k]) => !COMMON.has(k) && k !== "schema_version"),
      ),
      messageId: envelope.id,
      datacenterId: envelope.datacenter_id,
    };
    const context = {
      correlationId: envelope.correlation_id,
      causationId: envelope.id,
      traceparent,
    };
    const startMessage = `${envelope.type} (attempt ${attempt})`;
    // Quick work starts with its effect, in one transaction; other work says it started first,
    // and a task that ended meanwhile (cancelled) is not worked on.
    const startsWithEffect = !taskId || this.#o.driver.startsWithEffect?.(request) === true;
    const effect: Effect = {
      kind: "apply",
      envelope,
      spec,
      request,
      taskId,
      start: startsWithEffect && taskId ? { message: startMessage, context } : undefined,
      traceparent,
    };

    try {
      if (taskId && !startsWithEffect) {
        const started = await this.#starts.submit({
          taskId,
          actor: this.#o.service,
          message: startMessage,
          context,
        });
        if (!started) {
          await this.#effects.submit({ ...effect, kind: "skip" });
          msg.ack();
          this.#handled.inc({ service: this.#o.service, outcome: "skipped" });
          log().info({ task_id: taskId }, "command skipped: its task already ended");
          return;
        }
      }
      const keepAlive = setInterval(() => msg.working(), Math.max(500, this.#o.ackWaitMs / 3));
      let outcome: EffectOutcome;
      try {
        await this.#o.driver.prepare(request, async (percent, message) => {
          msg.working();
          if (!taskId) return;
          await inTransaction(this.#o.db, (tx) =>
            this.#o.tasks.transition(
              tx,
              taskId,
              "progress",
              { actor: this.#o.service, percent, message },
              context,
            ),
          ).catch((err: unknown) => log().debug({ err }, "progress not recorded"));
        });
        release();
        outcome = await this.#effects.submit(effect);
      } finally {
        clearInterval(keepAlive);
      }
      // Another delivery recorded it first (a re-send from PostgreSQL): announce what that one
      // did, as for a redelivery, and mark this one's outbox row done too.
      if (outcome === "duplicate") await this.#reannounce(envelope, traceparent);
      msg.ack();
      this.#handled.inc({ service: this.#o.service, outcome });
      if (outcome === "skipped") {
        log().info({ task_id: taskId }, "command skipped: its task already ended");
        return;
      }
      if (outcome === "duplicate") return;
      const seconds = (performance.now() - started) / 1000;
      this.#duration.observe({ type: envelope.type }, seconds);
      if (this.#o.log.isLevelEnabled("debug"))
        log().debug({ duration_ms: Math.round(seconds * 1000) }, "command handled");
    } catch (err) {
      // Our database went away, not the device: not an attempt of the command (held above).
      // A connection error may be the device's own (a driver talking TCP to a switch), so the
      // database is asked: only when it does not answer is the command held.
      if (await isOutage(this.#o.db, err)) throw err;
      failSpan(span, err);
      // A statement PostgreSQL refused: say why, not which query (the ORM's message holds the
      // whole statement and every parameter). Bad data (SQLSTATE class 22: a value the column
      // or jsonb refuses) fails the same way every time, so it is permanent.
      const sqlState = sqlStateOf(err);
      const cause = sqlState ? databaseCause(err) : undefined;
      const message = cause
        ? `PostgreSQL refused the effect: ${cause} (SQLSTATE ${sqlState})`
        : err instanceof Error
          ? err.message
          : String(err);
      const permanent = err instanceof PermanentDriverError || sqlState?.startsWith("22") === true;
      const code = permanent
        ? "permanent"
        : sqlState
          ? `sqlstate_${sqlState}`
          : err instanceof Error && "code" in err
            ? String((err as { code: unknown }).code)
            : "transient";
      await this.#o.inbox.recordAttempt(this.#consumer, envelope.id, {
        attempt,
        code,
        message: message.slice(0, 2000),
      });
      if (permanent || attempt >= this.#o.maxAttempts) {
        const errors = (await this.#o.inbox.attempts(this.#consumer, envelope.id)).map((a) => ({
          at: a.at.toISOString(),
          code: a.code,
          message: a.message,
        }));
        await this.#deadLetter(msg, {
          messageId: envelope.id,
          envelope: envelope,
          errors,
          reason: permanent
            ? `permanent_failure: ${message}`
            : `retries_exhausted: ${attempt} attempts, last: ${message}`,
          traceparent,
        });
        log().warn({ err: message }, "command dead-lettered");
        return;
      }
      const delay = this.#backoff(attempt);
      log().info({ err: message, retry_in_ms: delay }, "command failed; retrying");
      msg.nak(delay);
      this.#handled.inc({ service: this.#o.service, outcome: "retry" });
    }
  }

  /**
   * When a message was handled before: announces its recorded outcome again (the event may
   * have been lost with NATS) and marks the command done. Returns false for a new message.
   */
  async #reannounce(envelope: Envelope, traceparent: string | undefined): Promise<boolean> {
    const previous = await this.#o.inbox.handled(this.#consumer, envelope.id);
    if (previous === undefined) return false;
    await inTransaction(this.#o.db, async (tx) => {
      if (previous)
        await this.#o.outbox.enqueue(
          tx,
          [
            {
              id: String(previous.envelope.id),
              subject: previous.subject,
              envelope: previous.envelope,
              headers: messageHeaders(envelope.correlation_id, traceparent),
            },
          ],
          { resend: true },
        );
      await this.#o.outbox.done(tx, [envelope.id]);
    });
    return true;
  }

  /** Records `started` for commands that say so before their work, together. */
  async #commitStarts(items: StartItem[]): Promise<Settled<boolean>[]> {
    const together = (batch: StartItem[]) =>
      inTransaction(this.#o.db, async (tx) => {
        const started = await this.#o.tasks.startMany(tx, batch);
        return batch.map((item) => started.has(item.taskId));
      });
    return isolated(items, together, (err) => this.#isOutage(err));
  }

  /**
   * Records the effects of commands together: their tasks' `started` when it comes with the
   * effect, each effect, the inbox records, the events (task and domain) and the commands'
   * outbox rows done — one transaction, a handful of statements whatever the batch. A message
   * another delivery recorded first is taken out and the rest committed again; any other
   * failure is retried one message at a time, so it stays the failing message's own.
   */
  async #commitEffects(items: Effect[]): Promise<Settled<EffectOutcome>[]> {
    const outcomes = new Map<Effect, Settled<EffectOutcome>>();
    // One message id twice in a batch (sent twice, both copies pulled at once): the first is
    // recorded, the second is its duplicate.
    const seen = new Set<string>();
    let pending: Effect[] = [];
    for (const item of items) {
      if (seen.has(item.envelope.id)) outcomes.set(item, { ok: true, value: "duplicate" });
      else {
        seen.add(item.envelope.id);
        pending.push(item);
      }
    }
    for (let round = 0; pending.length > 0; round++) {
      try {
        const done = await this.#commitTogether(pending);
        pending.forEach((item, i) => outcomes.set(item, { ok: true, value: done[i] ?? "done" }));
        pending = [];
      } catch (err) {
        if (err instanceof AlreadyHandled && err.ids.size > 0 && round < 3) {
          // Recorded by another delivery meanwhile: those are duplicates, the rest goes again.
          for (const item of pending)
            if (err.ids.has(item.envelope.id)) outcomes.set(item, { ok: true, value: "duplicate" });
          pending = pending.filter((item) => !err.ids.has(item.envelope.id));
          continue;
        }
        if (pending.length === 1 || (await this.#isOutage(err))) {
          for (const item of pending) outcomes.set(item, { ok: false, error: err });
          pending = [];
          break;
        }
        // Something in the batch fails it: halves, then halves of what fails, down to the one
        // message whose failure it is. A poison message costs its batch-mates about 2·log2(n)
        // transactions, not one each, and they are still recorded together.
        await this.#commitSplit(pending, outcomes);
        pending = [];
      }
    }
    return items.map((item) => outcomes.get(item) ?? { ok: false, error: new Error("no outcome") });
  }

  async #commitSplit(items: Effect[], outcomes: Map<Effect, Settled<EffectOutcome>>) {
    const half = Math.ceil(items.length / 2);
    for (const part of [items.slice(0, half), items.slice(half)]) {
      if (part.length === 0) continue;
      if (part.length === 1) {
        const [item] = part as [Effect];
        outcomes.set(item, await this.#commitAlone(item));
        continue;
      }
      try {
        const done = await this.#commitTogether(part);
        part.forEach((item, i) => outcomes.set(item, { ok: true, value: done[i] ?? "done" }));
      } catch (err) {
        if (await this.#isOutage(err)) {
          for (const item of part) outcomes.set(item, { ok: false, error: err });
          continue;
        }
        // A duplicate or a poison message among them: split again.
        await this.#commitSplit(part, outcomes);
      }
    }
  }

  async #commitAlone(item: Effect): Promise<Settled<EffectOutcome>> {
    try {
      const [value] = await this.#commitTogether([item]);
      return { ok: true, value: value ?? "done" };
    } catch (error) {
      if (error instanceof AlreadyHandled) return { ok: true, value: "duplicate" };
      return { ok: false, error };
    }
  }

  #commitTogether(items: Effect[]): Promise<EffectOutcome[]> {
    return inTransaction(this.#o.db, async (tx) => {
      const events: OutboxMessage[] = [];
      const starts = items.flatMap((item) =>
        item.kind === "apply" && item.start && item.taskId
          ? [
              {
                taskId: item.taskId,
                actor: this.#o.service,
                message: item.start.message,
                context: item.start.context,
              },
            ]
          : [],
      );
      const started = await this.#o.tasks.startMany(tx, starts, events);
      const skipped = (item: Effect): boolean =>
        item.kind === "skip" ||
        (item.start !== undefined && item.taskId !== null && !started.has(item.taskId));
      const applied = items.filter((item) => !skipped(item));
      // The driver makes the effects of the batch together where it can (one statement for the
      // devices of many commands), in the order of the batch.
      const { driver } = this.#o;
      const requests = applied.map((item) => item.request);
      const made = driver.applyMany
        ? await driver.applyMany(tx, requests)
        : await sequentially(requests, (request) => driver.apply(tx, request));
      const effectOf = new Map(applied.map((item, i) => [item, made[i] ?? {}]));
      const records: { messageId: string; outcome: Outcome | null }[] = [];
      const results: EffectOutcome[] = [];
      for (const item of items) {
        const result = effectOf.get(item);
        if (result === undefined) {
          records.push({ messageId: item.envelope.id, outcome: null });
          results.push("skipped");
          continue;
        }
        const event = this.#effect(item, result);
        records.push({ messageId: item.envelope.id, outcome: event.outcome });
        events.push(event.message);
        results.push("done");
      }
      const recorded = await this.#o.inbox.recordMany(tx, this.#consumer, records);
      if (recorded.size < records.length)
        throw new AlreadyHandled(
          new Set(records.filter((r) => !recorded.has(r.messageId)).map((r) => r.messageId)),
        );
      await this.#o.outbox.enqueue(tx, events);
      await this.#o.outbox.done(
        tx,
        items.map((item) => item.envelope.id),
      );
      return results;
    });
  }

  /** The event that announces one command's effect, `result` being what the driver made. */
  #effect(
    item: Effect,
    result: Record<string, unknown>,
  ): { outcome: Outcome; message: OutboxMessage } {
    const { request, envelope, spec } = item;
    const event = createEnvelope(
      spec.event,
      {
        resource_kind: request.resourceKind,
        resource_id: request.resourceId,
        generation: request.generation,
        step: request.step,
        command_id: envelope.id,
        ...result,
      },
      {
        id: this.#o.newId(),
        time: this.#o.now(),
        subject: request.resourceId,
        actor: envelope.actor,
        correlationId: envelope.correlation_id,
        causationId: envelope.id,
        tenantId: envelope.tenant_id,
        projectId: envelope.project_id,
        environmentId: envelope.environment_id,
        datacenterId: envelope.datacenter_id,
      },
    );
    return {
      outcome: { subject: spec.event.subject, envelope: event },
      message: {
        id: event.id,
        subject: spec.event.subject,
        envelope: event,
        headers: messageHeaders(envelope.correlation_id, item.traceparent),
      },
    };
  }

  /** A failure of the database itself (not of one message): every message of a batch waits. */
  #isOutage(err: unknown): Promise<boolean> {
    return isOutage(this.#o.db, err);
  }

  async #deadLetter(
    msg: JsMsg,
    input: {
      messageId: string;
      envelope: Record<string, unknown>;
      errors: { at: string; code: string; message: string }[];
      reason: string;
      traceparent: string | undefined;
    },
  ): Promise<void> {
    await this.#o.deadLetters.record({
      consumer: this.#consumer,
      service: this.#o.service,
      subject: msg.subject,
      deliveryCount: msg.info.deliveryCount,
      ...input,
    });
    msg.term(input.reason.slice(0, 200));
    this.#handled.inc({ service: this.#o.service, outcome: "dead_letter" });
  }
}

/** `fn` of each of `list`, one after the other (a driver's effects share one transaction). */
async function sequentially<T, R>(list: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of list) out.push(await fn(item));
  return out;
}
