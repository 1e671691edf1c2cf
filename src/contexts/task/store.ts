import { and, asc, desc, eq, gt, inArray, lt, sql } from "drizzle-orm";
import {
  anyUuid,
  ContextRole,
  ContextStore,
  type Database,
  type Orm,
  rowsOf,
  type Tx,
} from "../../db/index.js";
import {
  InvalidTransitionError,
  isTerminal,
  type ListOptions,
  nextTaskState,
  NotFoundError,
  type Page,
  type TaskState,
  type TaskVerb,
  toPage,
} from "../../kernel/index.js";
import { taskEvents, tasks } from "./schema.js";

export type Task = Omit<typeof tasks.$inferSelect, "state"> & { state: TaskState };
export type TaskEvent = Omit<typeof taskEvents.$inferSelect, "verb"> & { verb: TaskVerb };

/** What a new task is about. */
export interface NewTask {
  readonly operation: string;
  readonly resourceKind: string;
  readonly resourceId: string;
  /** The resource generation the task asks for (0 when it is not about a generation). */
  readonly resourceGeneration?: number;
  readonly tenantId?: string | null;
  readonly projectId?: string | null;
  readonly environmentId?: string | null;
  readonly datacenterId: string;
  readonly actor: string;
  readonly correlationId: string;
  /** The W3C `traceparent` of the request that made it, if any. */
  readonly traceparent?: string | null | undefined;
}

/** Details of one transition. */
export interface TransitionInput {
  readonly actor: string;
  /** Progress text, or the reason of a failure or cancellation. */
  readonly message?: string;
  /** 0–100, for `progress`. */
  readonly percent?: number;
}

/** The outcome of {@link TaskStore.transition}. */
export interface TransitionResult {
  readonly task: Task;
  /** False when the task was already in the target state and nothing was recorded. */
  readonly changed: boolean;
}

/**
 * The channel every task change is announced on, after commit, by the triggers tasks_notify_*:
 * one notification per statement, its payload the ids of the tasks it changed, comma-separated.
 */
export const TASK_CHANNEL = "dv_task";

/**
 * The task context: the state machine of long-running operations (seed 001's verbs) with an
 * append-only history. Illegal transitions are refused; a terminal task never moves again,
 * except by an operator's explicit replay.
 */
export class TaskStore extends ContextStore {
  readonly #newId: () => string;

  constructor(db: Database, newId: () => string) {
    super(db, ContextRole.task);
    this.#newId = newId;
  }

  /** Creates a task in state `created`, with its first history event. */
  create(tx: Tx, input: NewTask): Promise<Task> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .insert(tasks)
        .values({ id: this.#newId(), ...input, state: "created" })
        .returning();
      const task = row as Task;
      await q
        .insert(taskEvents)
        .values({ taskId: task.id, seq: 1, verb: "created", actor: input.actor });
      return task;
    });
  }

  /** Creates tasks in state `created`, each with its first history event: two statements in all. */
  createMany(tx: Tx, inputs: readonly NewTask[]): Promise<Task[]> {
    if (inputs.length === 0) return Promise.resolve([]);
    return this.inTx(tx, async (q) => {
      const rows = (await q
        .insert(tasks)
        .values(inputs.map((input) => ({ id: this.#newId(), ...input, state: "created" })))
        .returning()) as Task[];
      const history = JSON.stringify(rows.map((task) => ({ id: task.id, actor: task.actor })));
      await q.execute(sql`
        INSERT INTO ${taskEvents} (task_id, seq, verb, actor)
        SELECT r.id, 1, 'created', r.actor
          FROM jsonb_to_recordset(${history}::jsonb) AS r(id uuid, actor text)`);
      return rows;
    });
  }

  /**
   * Moves a set of tasks to `started` (a task named twice, by two commands, starts twice in its
   * history): one update and one insert whatever their number. Tasks that ended (or do not
   * exist) are left as they are and missing from the result.
   */
  startMany(
    tx: Tx,
    items: readonly { id: string; actor: string; message: string }[],
  ): Promise<Map<string, Task>> {
    if (items.length === 0) return Promise.resolve(new Map<string, Task>());
    return this.inTx(tx, async (q): Promise<Map<string, Task>> => {
      // The last message of a task is the one it shows. The rows travel as one JSON parameter
      // (see OutboxStore.enqueue).
      const last = JSON.stringify(
        [...new Map(items.map((item) => [item.id, item.message]))].map(([id, message]) => ({
          id,
          message,
        })),
      );
      // The update locks the rows (and re-reads a row another transaction changed meanwhile),
      // so the history's next seq, computed by the next statement, cannot race.
      const moved = (await q
        .update(tasks)
        .set({
          state: "started",
          progressMessage: sql`r.message`,
          version: sql`${tasks.version} + 1`,
          updatedAt: sql`now()`,
        })
        .from(sql`jsonb_to_recordset(${last}::jsonb) AS r(id uuid, message text)`)
        .where(
          and(
            sql`${tasks.id} = r.id`,
            sql`${tasks.id} = ${anyUuid(items.map((item) => item.id))}`,
            sql`${tasks.state} IN ('created', 'queued', 'started')`,
          ),
        )
        .returning()) as Task[];
      if (moved.length === 0) return new Map();
      const started = new Map(moved.map((task) => [task.id, task]));
      const nth = new Map<string, number>();
      const history = JSON.stringify(
        items
          .filter((item) => started.has(item.id))
          .map((item) => {
            const n = (nth.get(item.id) ?? 0) + 1;
            nth.set(item.id, n);
            return { id: item.id, n, actor: item.actor, message: item.message };
          }),
      );
      // One JSON parameter for every row (see OutboxStore.enqueue).
      await q.execute(sql`
        INSERT INTO ${taskEvents} (task_id, seq, verb, actor, message)
        SELECT r.id,
               coalesce((SELECT max(e.seq) FROM ${taskEvents} e WHERE e.task_id = r.id), 0) + r.n,
               'started', r.actor, r.message
          FROM jsonb_to_recordset(${history}::jsonb) AS r(id uuid, n int, actor text, message text)`);
      return started;
    });
  }

  /**
   * Applies a lifecycle verb. `progress` keeps the task `started` and records the percentage;
   * `failed` and `cancelled` record the reason.
   *
   * @throws {NotFoundError}
   * @throws {InvalidTransitionError} when the state machine does not allow it (a terminal task).
   */
  transition(
    tx: Tx,
    id: string,
    verb: TaskVerb,
    input: TransitionInput,
  ): Promise<TransitionResult> {
    return this.inTx(tx, async (q) => {
      const [made] = await this.transitionMany(tx, [{ id, verb, input }]);
      if (made) return { task: made.task, changed: true };
      // Not made: say why (the row is locked by the attempt).
      const [current] = await q.select({ state: tasks.state }).from(tasks).where(eq(tasks.id, id));
      if (!current) throw new NotFoundError("task", id);
      throw new InvalidTransitionError("task", id, current.state, verb);
    });
  }

  /**
   * Applies many lifecycle verbs, in order (a task may move twice: `started`, then `succeeded`),
   * in three statements whatever their number: the tasks are locked and read, moved by the state
   * machine here, then written and their history appended in one statement each. A move the
   * state machine does not allow (the task ended meanwhile) is skipped. Returns the moves made,
   * each with the task as it was right after it.
   */
  transitionMany(
    tx: Tx,
    moves: readonly { id: string; verb: TaskVerb; input: TransitionInput }[],
  ): Promise<{ task: Task; verb: TaskVerb; input: TransitionInput }[]> {
    if (moves.length === 0) return Promise.resolve([]);
    return this.inTx(tx, async (q) => {
      const ids = [...new Set(moves.map((m) => m.id))].sort();
      const locked = (await q
        .select()
        .from(tasks)
        .where(inArray(tasks.id, ids))
        .orderBy(asc(tasks.id))
        .for("update")) as Task[];
      const current = new Map(locked.map((t) => [t.id, t]));
      const moved = new Map<string, { task: Task; steps: number }>();
      const done: { task: Task; verb: TaskVerb; input: TransitionInput; percent?: number }[] = [];
      for (const { id, verb, input } of moves) {
        const task = current.get(id);
        if (!task) continue;
        const next = nextTaskState(task.state, verb);
        if (!next) continue;
        const percent =
          verb === "succeeded"
            ? 100
            : verb === "progress"
              ? clampPercent(input.percent)
              : undefined;
        const after: Task = {
          ...task,
          state: next,
          ...(percent === undefined ? {} : { progressPercent: percent }),
          ...(verb === "progress" || verb === "started"
            ? { progressMessage: input.message ?? "" }
            : {}),
          ...(verb === "failed" || verb === "cancelled" ? { reason: input.message ?? verb } : {}),
          ...(isTerminal(next) ? { finishedAt: new Date() } : {}),
          version: task.version + 1,
        };
        current.set(id, after);
        moved.set(id, { task: after, steps: (moved.get(id)?.steps ?? 0) + 1 });
        done.push({ task: after, verb, input, ...(percent === undefined ? {} : { percent }) });
      }
      if (done.length === 0) return [];
      const rows = JSON.stringify(
        [...moved.values()].map(({ task, steps }) => ({
          id: task.id,
          state: task.state,
          percent: task.progressPercent,
          message: task.progressMessage,
          reason: task.reason,
          terminal: isTerminal(task.state),
          steps,
        })),
      );
      // The rows as written: the last move of each task answers with the row itself.
      const written = (await q
        .update(tasks)
        .set({
          state: sql`r.state`,
          progressPercent: sql`r.percent`,
          progressMessage: sql`r.message`,
          reason: sql`r.reason`,
          finishedAt: sql`CASE WHEN r.terminal THEN coalesce(${tasks.finishedAt}, now()) ELSE NULL END`,
          version: sql`${tasks.version} + r.steps`,
          updatedAt: sql`now()`,
        })
        .from(
          sql`jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, state text, percent int, message text, reason text, terminal boolean, steps int)`,
        )
        .where(
          and(
            sql`${tasks.id} = r.id`,
            sql`${tasks.id} = ${anyUuid([...moved.values()].map(({ task }) => task.id))}`,
          ),
        )
        .returning()) as Task[];
      const rowOf = new Map(written.map((t) => [t.id, t]));
      for (let i = done.length - 1, seen = new Set<string>(); i >= 0; i--) {
        const entry = done[i];
        if (!entry || seen.has(entry.task.id)) continue;
        seen.add(entry.task.id);
        entry.task = rowOf.get(entry.task.id) ?? entry.task;
      }
      const nth = new Map<string, number>();
      const history = JSON.stringify(
        done.map(({ task, verb, input, percent }) => {
          const n = (nth.get(task.id) ?? 0) + 1;
          nth.set(task.id, n);
          return {
            id: task.id,
            n,
            verb,
            actor: input.actor,
            message: input.message ?? "",
            percent: percent ?? null,
          };
        }),
      );
      await q.execute(sql`
        INSERT INTO ${taskEvents} (task_id, seq, verb, actor, message, percent)
        SELECT r.id,
               coalesce((SELECT max(e.seq) FROM ${taskEvents} e WHERE e.task_id = r.id), 0) + r.n,
               r.verb, r.actor, r.message, r.percent
          FROM jsonb_to_recordset(${history}::jsonb)
            AS r(id uuid, n int, verb text, actor text, message text, percent int)`);
      return done.map(({ task, verb, input }) => ({ task, verb, input }));
    });
  }

  /**
   * For each resource, its tasks that are open or ask for the generation given, oldest first;
   * one statement for all of them.
   */
  relevantFor(
    tx: Tx,
    resources: readonly { id: string; generation: number }[],
  ): Promise<Map<string, Task[]>> {
    const out = new Map<string, Task[]>();
    if (resources.length === 0) return Promise.resolve(out);
    const wanted = JSON.stringify(resources.map((r) => ({ id: r.id, generation: r.generation })));
    return this.inTx(tx, async (q) => {
      const rows = (await q
        .select({ task: tasks })
        .from(tasks)
        .innerJoin(
          sql`jsonb_to_recordset(${wanted}::jsonb) AS r(id uuid, generation bigint)`,
          sql`${tasks.resourceId} = r.id`,
        )
        .where(
          and(
            sql`${tasks.resourceId} = ${anyUuid(resources.map((r) => r.id))}`,
            sql`(${tasks.state} IN ('created', 'queued', 'started') OR ${tasks.resourceGeneration} = r.generation)`,
          ),
        )
        .orderBy(asc(tasks.createdAt), asc(tasks.id))) as { task: Task }[];
      for (const { task } of rows) {
        const list = out.get(task.resourceId) ?? [];
        list.push(task);
        out.set(task.resourceId, list);
      }
      return out;
    });
  }

  /** {@link describeWait} for many tasks, in one statement; returns the ids it changed. */
  describeWaits(
    tx: Tx,
    waits: readonly { taskId: string; message: string }[],
  ): Promise<Set<string>> {
    if (waits.length === 0) return Promise.resolve(new Set());
    const rows = JSON.stringify(waits.map((w) => ({ id: w.taskId, message: w.message })));
    return this.inTx(tx, async (q) => {
      const changed = await q.execute(sql`
        UPDATE ${tasks} t
           SET progress_message = r.message, version = t.version + 1, updated_at = now()
          FROM jsonb_to_recordset(${rows}::jsonb) AS r(id uuid, message text)
         WHERE t.id = r.id AND t.id = ${anyUuid(waits.map((w) => w.taskId))}
           AND t.state IN ('created', 'queued')
           AND t.progress_message IS DISTINCT FROM r.message
        RETURNING t.id`);
      return new Set(rowsOf<{ id: string }>(changed).map((r) => r.id));
    });
  }

  /**
   * Puts a failed task back to `queued` for an operator's replay of its dead letter; the only
   * way out of a terminal state, recorded in the history with the actor and reason.
   *
   * @throws {InvalidTransitionError} unless the task is `failed`.
   */
  requeueForReplay(tx: Tx, id: string, input: { actor: string; reason: string }): Promise<Task> {
    return this.inTx(tx, async (q) => {
      const current = await this.#lock(q, id);
      if (current.state !== "failed")
        throw new InvalidTransitionError("task", id, current.state, "queued (replay)");
      const [row] = await q
        .update(tasks)
        .set({
          state: "queued",
          finishedAt: null,
          progressPercent: 0,
          progressMessage: "",
          reason: "",
          version: sql`${tasks.version} + 1`,
          updatedAt: sql`now()`,
        })
        .where(eq(tasks.id, id))
        .returning();
      await this.#append(
        q,
        id,
        "queued",
        { actor: input.actor, message: `replay: ${input.reason}` },
        undefined,
      );
      return row as Task;
    });
  }

  /**
   * Says what a task that has not started yet waits for (its progress message), without a
   * transition: a command that cannot reach its site yet. Only a task still `created` or
   * `queued`, and only when the message changes (followers are woken). Returns whether it did.
   */
  async describeWait(tx: Tx, id: string, message: string): Promise<boolean> {
    return (await this.describeWaits(tx, [{ taskId: id, message }])).has(id);
  }

  /** A task; with `tenantId`, only that tenant's. @throws {NotFoundError} */
  async get(id: string, scope: { tenantId?: string } = {}, tx?: Tx): Promise<Task> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(tasks)
        .where(
          and(eq(tasks.id, id), scope.tenantId ? eq(tasks.tenantId, scope.tenantId) : undefined),
        ),
    );
    if (!row) throw new NotFoundError("task", id);
    return row as Task;
  }

  /** The history of a task, oldest first; with `afterSeq`, only what came after it. */
  history(id: string, tx?: Tx, afterSeq = 0): Promise<TaskEvent[]> {
    return this.reading(tx, async (q) => {
      const rows = await q
        .select()
        .from(taskEvents)
        .where(and(eq(taskEvents.taskId, id), gt(taskEvents.seq, afterSeq)))
        .orderBy(asc(taskEvents.seq));
      return rows as TaskEvent[];
    });
  }

  /**
   * Tasks, newest first (by id: a UUIDv7 grows with time); filtered by tenant, resource and
   * state. `after` is the last id of the previous page, so the next page holds older tasks.
   */
  async list(
    filter: { tenantId?: string; resourceId?: string; state?: TaskState },
    options: ListOptions,
    tx?: Tx,
  ): Promise<Page<Task>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(tasks)
        .where(
          and(
            filter.tenantId ? eq(tasks.tenantId, filter.tenantId) : undefined,
            filter.resourceId ? eq(tasks.resourceId, filter.resourceId) : undefined,
            filter.state ? eq(tasks.state, filter.state) : undefined,
            options.after ? lt(tasks.id, options.after) : undefined,
          ),
        )
        .orderBy(desc(tasks.id))
        .limit(options.limit + 1),
    );
    return toPage(rows as Task[], options.limit);
  }

  /** Tasks of a resource that have not ended, oldest first. */
  openFor(resourceId: string, tx?: Tx): Promise<Task[]> {
    return this.reading(tx, async (q) => {
      const rows = await q
        .select()
        .from(tasks)
        .where(
          and(
            eq(tasks.resourceId, resourceId),
            sql`${tasks.state} IN ('created', 'queued', 'started')`,
          ),
        )
        .orderBy(asc(tasks.createdAt), asc(tasks.id));
      return rows as Task[];
    });
  }

  /** Every task of a resource, oldest first. */
  allFor(resourceId: string, tx?: Tx): Promise<Task[]> {
    return this.reading(tx, async (q) => {
      const rows = await q
        .select()
        .from(tasks)
        .where(eq(tasks.resourceId, resourceId))
        .orderBy(asc(tasks.createdAt), asc(tasks.id));
      return rows as Task[];
    });
  }

  /** The newest task acting on a resource, if any. */
  async latestFor(resourceId: string, tx?: Tx): Promise<Task | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(tasks)
        .where(eq(tasks.resourceId, resourceId))
        .orderBy(desc(tasks.createdAt), desc(tasks.id))
        .limit(1),
    );
    return row as Task | undefined;
  }

  async #lock(q: Orm, id: string): Promise<Task> {
    const [row] = await q.select().from(tasks).where(eq(tasks.id, id)).for("update");
    if (!row) throw new NotFoundError("task", id);
    return row as Task;
  }

  async #append(
    q: Orm,
    id: string,
    verb: TaskVerb,
    input: TransitionInput,
    percent: number | undefined,
  ): Promise<void> {
    // The task row is locked by this transaction, so computing the next seq cannot race; it is
    // computed in the insert itself, one round trip.
    await q.insert(taskEvents).values({
      taskId: id,
      seq: sql`(SELECT coalesce(max(${taskEvents.seq}), 0) + 1 FROM ${taskEvents} WHERE ${taskEvents.taskId} = ${id})`,
      verb,
      actor: input.actor,
      message: input.message ?? "",
      percent: percent ?? null,
    });
  }

  /** Seconds since the oldest task that has not ended was created; 0 when every task ended. */
  async oldestUnfinishedSeconds(): Promise<number> {
    const [row] = await this.reading(undefined, (q) =>
      q
        .select({
          seconds: sql<number>`coalesce(extract(epoch from now() - min(${tasks.createdAt})), 0)::float8`,
        })
        .from(tasks)
        .where(sql`${tasks.state} IN ('created', 'queued', 'started')`),
    );
    return Number(row?.seconds ?? 0);
  }

  /** How many tasks are in each state (for the `dataverket_tasks` gauge). */
  async countByState(): Promise<{ state: string; count: number }[]> {
    return this.reading(undefined, (q) =>
      q
        .select({ state: tasks.state, count: sql<number>`count(*)::int` })
        .from(tasks)
        .groupBy(tasks.state),
    );
  }
}

function clampPercent(value: number | undefined): number {
  if (value === undefined || Number.isNaN(value)) return 0;
  return Math.max(0, Math.min(100, Math.round(value)));
}
