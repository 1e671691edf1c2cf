import type { Tx } from "../db/index.js";
import type { NewTask, Task, TaskStore, TransitionInput } from "../contexts/task/index.js";
import type { OutboxMessage, OutboxStore } from "../contexts/runtime/index.js";
import type { IdGenerator, TaskVerb } from "../kernel/index.js";
import { messageHeaders } from "../messaging/index.js";
import { createEnvelope, taskEvents } from "../messaging/index.js";

/** Where and for whom the events of a task are emitted. */
export interface TaskEventContext {
  readonly correlationId: string;
  readonly causationId?: string | null;
  /** W3C trace context of the work that moves the task; the task's own when absent. */
  readonly traceparent?: string | undefined;
}

/**
 * Task lifecycle with its events: every transition is recorded in the task context and its
 * `dv.task.evt.<verb>` envelope is written to the outbox in the same transaction, so the history
 * in PostgreSQL and the events on NATS cannot disagree.
 */
export class TaskService {
  readonly #tasks: TaskStore;
  readonly #outbox: OutboxStore;
  readonly #newId: IdGenerator;
  readonly #now: () => Date;

  constructor(deps: {
    tasks: TaskStore;
    outbox: OutboxStore;
    newId: IdGenerator;
    now: () => Date;
  }) {
    this.#tasks = deps.tasks;
    this.#outbox = deps.outbox;
    this.#newId = deps.newId;
    this.#now = deps.now;
  }

  /** Creates a task (`created`) and emits `task.created`. */
  async create(
    tx: Tx,
    input: NewTask,
    context: TaskEventContext & { causationId?: string | null } = {
      correlationId: input.correlationId,
    },
  ): Promise<Task> {
    const task = await this.#tasks.create(tx, input);
    await this.#emit(tx, task, "created", { actor: input.actor }, context);
    return task;
  }

  /** Creates tasks (`created`) and emits their `task.created` events: four statements in all. */
  async createMany(
    tx: Tx,
    inputs: readonly NewTask[],
    contexts?: readonly TaskEventContext[],
  ): Promise<Task[]> {
    const created = await this.#tasks.createMany(tx, inputs);
    await this.#outbox.enqueue(
      tx,
      created.map((task, i) =>
        this.#event(
          task,
          "created",
          { actor: task.actor },
          contexts?.[i] ?? { correlationId: task.correlationId },
        ),
      ),
    );
    return created;
  }

  /**
   * Starts a set of tasks, one `task.started` event per item, for commands handled together.
   * The events go to `sink` when given (the caller writes them with its own), else to the
   * outbox. Returns the tasks started; an ended task is not among them.
   */
  async startMany(
    tx: Tx,
    items: readonly {
      taskId: string;
      actor: string;
      message: string;
      context: TaskEventContext;
    }[],
    sink?: OutboxMessage[],
  ): Promise<Map<string, Task>> {
    const started = await this.#tasks.startMany(
      tx,
      items.map((item) => ({ id: item.taskId, actor: item.actor, message: item.message })),
    );
    const events: OutboxMessage[] = [];
    for (const item of items) {
      const task = started.get(item.taskId);
      if (task)
        events.push(
          this.#event(task, "started", { actor: item.actor, message: item.message }, item.context),
        );
    }
    if (sink) sink.push(...events);
    else await this.#outbox.enqueue(tx, events);
    return started;
  }

  /**
   * Moves a task and emits the event of the verb.
   *
   * @throws {InvalidTransitionError} when the state machine forbids it.
   */
  async transition(
    tx: Tx,
    id: string,
    verb: TaskVerb,
    input: TransitionInput,
    context?: TaskEventContext,
  ): Promise<Task> {
    const { task } = await this.#tasks.transition(tx, id, verb, input);
    await this.#emit(tx, task, verb, input, context ?? { correlationId: task.correlationId });
    return task;
  }

  /**
   * Moves many tasks, in order, and emits an event per move made; a move the state machine
   * forbids (the task ended meanwhile) is skipped. The events go to `sink` when given (the caller
   * writes them with its own messages), else to the outbox: four statements in all.
   */
  async transitionMany(
    tx: Tx,
    moves: readonly {
      taskId: string;
      verb: TaskVerb;
      input: TransitionInput;
      context?: TaskEventContext;
    }[],
    sink?: OutboxMessage[],
  ): Promise<Task[]> {
    const made = await this.#tasks.transitionMany(
      tx,
      moves.map((m) => ({ id: m.taskId, verb: m.verb, input: m.input })),
    );
    const contexts = new Map(moves.map((m) => [`${m.taskId}/${m.verb}`, m.context]));
    const events = made.map(({ task, verb, input }) =>
      this.#event(
        task,
        verb,
        input,
        contexts.get(`${task.id}/${verb}`) ?? { correlationId: task.correlationId },
      ),
    );
    if (sink) sink.push(...events);
    else await this.#outbox.enqueue(tx, events);
    return made.map((m) => m.task);
  }

  /** Puts a failed task back to `queued` for a replay, and emits `task.queued`. */
  async requeueForReplay(
    tx: Tx,
    id: string,
    input: { actor: string; reason: string },
    context: TaskEventContext,
  ): Promise<Task> {
    const task = await this.#tasks.requeueForReplay(tx, id, input);
    await this.#emit(
      tx,
      task,
      "queued",
      { actor: input.actor, message: `replay: ${input.reason}` },
      context,
    );
    return task;
  }

  async #emit(
    tx: Tx,
    task: Task,
    verb: TaskVerb,
    input: TransitionInput,
    context: TaskEventContext,
  ): Promise<void> {
    await this.#outbox.enqueue(tx, [this.#event(task, verb, input, context)]);
  }

  #event(
    task: Task,
    verb: TaskVerb,
    input: TransitionInput,
    context: TaskEventContext,
  ): OutboxMessage {
    const definition = taskEvents[verb];
    const envelope = createEnvelope(
      definition,
      {
        task_id: task.id,
        operation: task.operation,
        state: task.state,
        resource_kind: task.resourceKind,
        resource_id: task.resourceId,
        ...(verb === "progress" || verb === "succeeded" ? { percent: task.progressPercent } : {}),
        ...(input.message ? { message: input.message } : {}),
      },
      {
        id: this.#newId(),
        time: this.#now(),
        subject: task.id,
        actor: input.actor,
        correlationId: context.correlationId,
        causationId: context.causationId ?? null,
        tenantId: task.tenantId,
        projectId: task.projectId,
        environmentId: task.environmentId,
        datacenterId: task.datacenterId,
      },
    );
    return {
      id: envelope.id,
      subject: definition.subject,
      envelope,
      headers: messageHeaders(context.correlationId, context.traceparent ?? task.traceparent),
    };
  }
}
