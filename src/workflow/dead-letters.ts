import type { AuditStore } from "../contexts/audit/index.js";
import type {
  DeadLetter,
  DeadLetterStore,
  InboxStore,
  OutboxStore,
} from "../contexts/runtime/index.js";
import { type Database, inTransaction, type Tx } from "../db/index.js";
import { type IdGenerator, InvalidTransitionError, isUuid } from "../kernel/index.js";
import { createEnvelope, deadLetterEvents, type Envelope } from "../messaging/index.js";
import type { TaskService } from "./tasks.js";
import { messageHeaders } from "../messaging/index.js";

/** Everything known about a message that could not be handled. */
export interface DeadLetterInput {
  /** The consumer that gave up (`dv-nett`): its inbox is told to ignore the message from now on. */
  readonly consumer: string;
  readonly service: string;
  readonly messageId: string;
  readonly subject: string;
  /** The envelope as received; `{ raw }` when it could not be parsed. */
  readonly envelope: Record<string, unknown>;
  readonly errors: { at: string; code: string; message: string }[];
  readonly deliveryCount: number;
  readonly reason: string;
  readonly traceparent?: string | undefined;
}

/** Options of {@link DeadLetterService}. */
export interface DeadLetterServiceDeps {
  readonly db: Database;
  readonly deadLetters: DeadLetterStore;
  readonly inbox: InboxStore;
  readonly outbox: OutboxStore;
  readonly audit: AuditStore;
  readonly tasks: TaskService;
  readonly newId: IdGenerator;
  readonly now: () => Date;
}

const str = (value: unknown): string | null =>
  typeof value === "string" && value.length > 0 ? value : null;

// An envelope's ids, when they are ids: a dead letter may hold any message (a poison one), and
// the audit trail's columns are UUIDs.
const uuid = (value: unknown): string | null => (isUuid(value) ? value : null);
/** `value` if an envelope may carry it as an id (1–128 characters). */
const envelopeId = (value: unknown): string | null =>
  typeof value === "string" && value.length > 0 && value.length <= 128 ? value : null;

/**
 * `value` with every string (and key) as PostgreSQL's text and jsonb take it: a NUL, which neither
 * takes, and a lone UTF-16 surrogate, which jsonb refuses, become U+FFFD.
 */
function storable<T>(value: T): T {
  if (typeof value === "string")
    return value.replaceAll("\u0000", "\ufffd").replace(LONE_SURROGATE, "\ufffd") as T;
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [storable(k), storable(v)]),
    ) as T;
  return value;
}
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Dead letters as one workflow: recording one fails its task and announces it, in one
 * transaction; replaying one re-sends its command with a new id caused by the dead letter,
 * re-queues the task and audits who did it; discarding one audits it. Nothing replays by itself.
 */
export class DeadLetterService {
  readonly #deps: DeadLetterServiceDeps;

  constructor(deps: DeadLetterServiceDeps) {
    this.#deps = deps;
  }

  /** Records a dead letter (once per message id) and fails its task. Returns false if already recorded. */
  record(received: DeadLetterInput): Promise<boolean> {
    const { deadLetters, inbox, tasks } = this.#deps;
    // A poison message may hold what PostgreSQL refuses (that may be why it is poison): stored
    // as it is, its dead letter would fail as well, for ever.
    const input = storable(received);
    const envelope = input.envelope;
    const data = (envelope.data ?? {}) as Record<string, unknown>;
    // A task id that is not one names no task (and a dead letter's column is a uuid); an id
    // longer than an envelope allows (a poison message's own) is not carried on.
    const taskId = uuid(data.task_id);
    const id = this.#deps.newId();
    const correlationId = envelopeId(envelope.correlation_id) ?? envelopeId(input.messageId) ?? id;
    return inTransaction(this.#deps.db, async (tx) => {
      const created = await deadLetters.create(tx, {
        id,
        messageId: input.messageId,
        subject: input.subject,
        service: input.service,
        type: str(envelope.type) ?? "unknown",
        envelope,
        errors: input.errors,
        deliveryCount: input.deliveryCount,
        reason: input.reason,
        correlationId,
        causationId: str(envelope.causation_id),
        taskId,
      });
      if (!created) return false;
      // A redelivery of the same message is ignored from now on; a replay has a new id. The
      // command is done with: its outbox row, kept in case NATS lost it, goes.
      await inbox.record(tx, input.consumer, input.messageId, null);
      await this.#deps.outbox.done(tx, [input.messageId]);
      if (taskId) {
        try {
          await tasks.transition(
            tx,
            taskId,
            "failed",
            { actor: input.service, message: input.reason },
            { correlationId, causationId: envelopeId(input.messageId) },
          );
        } catch (err) {
          if (!(err instanceof InvalidTransitionError)) throw err;
        }
      }
      await this.#announce(tx, "created", {
        id,
        messageId: input.messageId,
        subject: input.subject,
        service: input.service,
        reason: input.reason,
        taskId,
        data,
        correlationId,
        traceparent: input.traceparent,
      });
      return true;
    });
  }

  /**
   * Re-sends a dead letter's command with a new message id (its causation the dead letter),
   * puts its task back to `queued`, and audits the operator's action.
   *
   * @throws {NotFoundError} @throws {InvalidTransitionError} when it is not open.
   */
  replay(
    id: string,
    actor: string,
    reason: string,
    correlationId: string,
    traceparent?: string,
  ): Promise<{ deadLetter: DeadLetter; messageId: string }> {
    const { deadLetters, outbox, audit, tasks } = this.#deps;
    return inTransaction(this.#deps.db, async (tx) => {
      const messageId = this.#deps.newId();
      const deadLetter = await deadLetters.resolve(tx, id, "replayed", actor, messageId);
      const original = deadLetter.envelope as Partial<Envelope>;
      const envelope = {
        ...original,
        id: messageId,
        causation_id: deadLetter.id,
        time: this.#deps.now().toISOString(),
      };
      await outbox.enqueue(tx, [
        {
          id: messageId,
          subject: deadLetter.subject,
          envelope,
          // The replayed command is part of the trace of the operator's request that replays it.
          headers: messageHeaders(deadLetter.correlationId, traceparent),
        },
      ]);
      if (deadLetter.taskId) {
        try {
          await tasks.requeueForReplay(
            tx,
            deadLetter.taskId,
            { actor, reason },
            { correlationId: deadLetter.correlationId, causationId: deadLetter.id, traceparent },
          );
        } catch (err) {
          // A task that is not failed (it was cancelled meanwhile) stays as it is.
          if (!(err instanceof InvalidTransitionError)) throw err;
        }
      }
      await audit.record(tx, {
        actor,
        tenantId: uuid(original.tenant_id),
        projectId: uuid(original.project_id),
        datacenterId: str(original.datacenter_id) ?? "-",
        action: "dead_letter.replay",
        resourceKind: "dead_letter",
        resourceId: deadLetter.id,
        before: { state: "open" },
        after: { state: "replayed", replayMessageId: messageId, reason },
        correlationId,
      });
      await this.#announce(tx, "replayed", {
        id,
        messageId,
        subject: deadLetter.subject,
        service: deadLetter.service,
        reason,
        taskId: deadLetter.taskId,
        data: original.data ?? {},
        correlationId: deadLetter.correlationId,
        traceparent,
      });
      return { deadLetter, messageId };
    });
  }

  /**
   * Sets a dead letter aside for good, audited.
   *
   * @throws {NotFoundError} @throws {InvalidTransitionError} when it is not open.
   */
  discard(id: string, actor: string, reason: string, correlationId: string): Promise<DeadLetter> {
    const { deadLetters, audit } = this.#deps;
    return inTransaction(this.#deps.db, async (tx) => {
      const deadLetter = await deadLetters.resolve(tx, id, "discarded", actor);
      const original = deadLetter.envelope as Partial<Envelope>;
      await audit.record(tx, {
        actor,
        tenantId: uuid(original.tenant_id),
        projectId: uuid(original.project_id),
        datacenterId: str(original.datacenter_id) ?? "-",
        action: "dead_letter.discard",
        resourceKind: "dead_letter",
        resourceId: deadLetter.id,
        before: { state: "open" },
        after: { state: "discarded", reason },
        correlationId,
      });
      await this.#announce(tx, "discarded", {
        id,
        messageId: deadLetter.messageId,
        subject: deadLetter.subject,
        service: deadLetter.service,
        reason,
        taskId: deadLetter.taskId,
        data: original.data ?? {},
        correlationId: deadLetter.correlationId,
        traceparent: undefined,
      });
      return deadLetter;
    });
  }

  async #announce(
    tx: Tx,
    verb: "created" | "replayed" | "discarded",
    input: {
      id: string;
      messageId: string;
      subject: string;
      service: string;
      reason: string;
      taskId: string | null;
      data: Record<string, unknown>;
      correlationId: string;
      traceparent: string | undefined;
    },
  ): Promise<void> {
    const definition = deadLetterEvents[verb];
    const envelope = createEnvelope(
      definition,
      {
        dead_letter_id: input.id,
        message_id: input.messageId,
        subject: input.subject,
        service: input.service,
        resource_kind: str(input.data.resource_kind),
        resource_id: str(input.data.resource_id),
        task_id: input.taskId,
        reason: input.reason,
      },
      {
        id: this.#deps.newId(),
        time: this.#deps.now(),
        subject: input.id,
        actor: "sentral",
        correlationId: input.correlationId,
        causationId: envelopeId(input.messageId),
      },
    );
    await this.#deps.outbox.enqueue(tx, [
      {
        id: envelope.id,
        subject: definition.subject,
        envelope,
        headers: messageHeaders(input.correlationId, input.traceparent),
      },
    ]);
  }
}
