import type { ConsumerMessages, JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { Counter, Histogram } from "prom-client";
import { type DeadLetterService } from "../workflow/index.js";
import type { InboxStore, OutboxStore } from "../contexts/runtime/index.js";
import { type Database, inTransaction, isDatabaseUnavailable } from "../db/index.js";
import { type IdGenerator, InvalidTransitionError } from "../kernel/index.js";
import { type CommandSpec, createEnvelope, domainCommands, type Envelope, HEADERS, MessageError, messageHeaders, messages, traceIdOf, workerConsumer, type WorkerService } from "../messaging/index.js";
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
import type { TaskService } from "../workflow/index.js";
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
}

const COMMON = new Set(["resource_kind", "resource_id", "generation", "task_id", "step"]);

/** Thrown inside the effect transaction when another delivery of the same message committed first. */
class AlreadyHandled extends Error {}

/**
 * A domain worker (`dv worker --service nett`): pulls its service's commands from JetStream and
 * carries each out once in effect. The effect, the inbox record of the message id and the event
 * that announces it commit in one transaction; a redelivered message re-announces the recorded
 * event instead of acting twice. Transient failures are retried with bounded exponential backoff
 * and full jitter; permanent ones, unparseable messages and exhausted retries become dead letters
 * with every error, and their task fails.
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

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#consumer = workerConsumer(options.service);
    this.#commands = new Map(
      Object.values(domainCommands[options.service]).map((spec) => [spec.command.type, spec]),
    );
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
    this.#messages = await consumer.consume({ max_messages: Math.max(2, this.#o.concurrency * 2) });
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
      while (this.#inFlight.size >= this.#o.concurrency) await Promise.race(this.#inFlight);
      const work = this.#handleHolding(msg).catch((err: unknown) => {
        this.#o.log.error(
          { err, seq: msg.seq },
          "command handling failed unexpectedly; it will be redelivered",
        );
        msg.nak(this.#backoff(msg.info.deliveryCount));
      });
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
  async #handleHolding(msg: JsMsg): Promise<void> {
    for (let round = 0; ; round++) {
      try {
        return await this.#handle(msg);
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

  /** Whether this worker's database answers a trivial statement now. */
  async #databaseAnswers(): Promise<boolean> {
    return this.#o.db.query("SELECT 1").then(
      () => true,
      () => false,
    );
  }

  #backoff(attempt: number): number {
    const cap = Math.min(
      this.#o.backoffMaxMs,
      this.#o.backoffBaseMs * 2 ** Math.max(0, attempt - 1),
    );
    return Math.round(this.#o.random() * cap);
  }

  /** Handles one delivery in a consumer span, a child of the span that published it. */
  #handle(msg: JsMsg): Promise<void> {
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
      (span) => this.#process(msg, span),
    );
  }

  async #process(msg: JsMsg, span: Span): Promise<void> {
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
    const log = this.#o.log.child({
      correlation_id: envelope.correlation_id,
      ...(traceId ? { trace_id: traceId } : {}),
      message_id: envelope.id,
      type: envelope.type,
      attempt,
      ...(taskId ? { task_id: taskId } : {}),
      ...(envelope.tenant_id ? { tenant_id: envelope.tenant_id } : {}),
    });

    // A message handled before (redelivered after a crash, or re-sent from PostgreSQL): announce
    // what it did again, and do nothing else.
    const previous = await this.#o.inbox.handled(this.#consumer, envelope.id);
    if (previous !== undefined) {
      if (previous) {
        await inTransaction(this.#o.db, (tx) =>
          this.#o.outbox.enqueue(
            tx,
            [
              {
                id: String(previous.envelope.id),
                subject: previous.subject,
                envelope: previous.envelope,
                headers: messageHeaders(envelope.correlation_id, traceparent),
              },
            ],
            { ifAbsent: true },
          ),
        );
      }
      msg.ack();
      this.#handled.inc({ service: this.#o.service, outcome: "duplicate" });
      return;
    }

    if (taskId) {
      try {
        await inTransaction(this.#o.db, (tx) =>
          this.#o.tasks.transition(
            tx,
            taskId,
            "started",
            { actor: this.#o.service, message: `${envelope.type} (attempt ${attempt})` },
            { correlationId: envelope.correlation_id, causationId: envelope.id, traceparent },
          ),
        );
      } catch (err) {
        if (!(err instanceof InvalidTransitionError)) throw err;
        // The task ended (cancelled): the platform stopped working towards it.
        await inTransaction(this.#o.db, (tx) =>
          this.#o.inbox.record(tx, this.#consumer, envelope.id, null),
        );
        msg.ack();
        this.#handled.inc({ service: this.#o.service, outcome: "skipped" });
        log.info({ task_id: taskId }, "command skipped: its task already ended");
        return;
      }
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

    try {
      const keepAlive = setInterval(() => msg.working(), Math.max(500, this.#o.ackWaitMs / 3));
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
              { correlationId: envelope.correlation_id, causationId: envelope.id, traceparent },
            ),
          ).catch((err: unknown) => log.debug({ err }, "progress not recorded"));
        });
        await inTransaction(this.#o.db, async (tx) => {
          const result = await this.#o.driver.apply(tx, request);
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
          const outcome = { subject: spec.event.subject, envelope: event };
          if (!(await this.#o.inbox.record(tx, this.#consumer, envelope.id, outcome)))
            throw new AlreadyHandled();
          await this.#o.outbox.enqueue(tx, [
            {
              id: event.id,
              subject: spec.event.subject,
              envelope: event,
              headers: messageHeaders(envelope.correlation_id, traceparent),
            },
          ]);
        });
      } finally {
        clearInterval(keepAlive);
      }
      msg.ack();
      this.#handled.inc({ service: this.#o.service, outcome: "done" });
      const seconds = (performance.now() - started) / 1000;
      this.#duration.observe({ type: envelope.type }, seconds);
      log.debug({ duration_ms: Math.round(seconds * 1000) }, "command handled");
    } catch (err) {
      if (err instanceof AlreadyHandled) {
        msg.ack();
        this.#handled.inc({ service: this.#o.service, outcome: "duplicate" });
        return;
      }
      // Our database went away, not the device: not an attempt of the command (held above).
      // A connection error may be the device's own (a driver talking TCP to a switch), so the
      // database is asked: only when it does not answer is the command held.
      if (isDatabaseUnavailable(err) && !(await this.#databaseAnswers())) throw err;
      const message = err instanceof Error ? err.message : String(err);
      failSpan(span, err);
      const code =
        err instanceof PermanentDriverError
          ? "permanent"
          : err instanceof Error && "code" in err
            ? String((err as { code: unknown }).code)
            : "transient";
      await this.#o.inbox.recordAttempt(this.#consumer, envelope.id, {
        attempt,
        code,
        message: message.slice(0, 2000),
      });
      if (err instanceof PermanentDriverError || attempt >= this.#o.maxAttempts) {
        const errors = (await this.#o.inbox.attempts(this.#consumer, envelope.id)).map((a) => ({
          at: a.at.toISOString(),
          code: a.code,
          message: a.message,
        }));
        await this.#deadLetter(msg, {
          messageId: envelope.id,
          envelope: envelope,
          errors,
          reason:
            err instanceof PermanentDriverError
              ? `permanent_failure: ${message}`
              : `retries_exhausted: ${attempt} attempts, last: ${message}`,
          traceparent,
        });
        log.warn({ err: message }, "command dead-lettered");
        return;
      }
      const delay = this.#backoff(attempt);
      log.info({ err: message, retry_in_ms: delay }, "command failed; retrying");
      msg.nak(delay);
      this.#handled.inc({ service: this.#o.service, outcome: "retry" });
    }
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
