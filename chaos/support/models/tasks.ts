// A model of the task state machine (TaskStore) for `fc.commands`: up to four tasks per run,
// driven through every verb — legal or not — by workers, by an operator's replay and by the wait
// messages of tasks that have not started, with two workers now and then racing on one task. The
// model says, from docs/data-model.md ("Tasks and audit") and the state table of seed 001's verbs,
// what every call answers and what the task and its history look like after it.
import fc from "fast-check";
import { expect } from "vitest";
import type { TestDatabase } from "../../../test/support/database.js";
import type { TaskStore, TransitionInput } from "../../../src/contexts/task/index.js";
import { inTransaction } from "../../../src/db/index.js";
import {
  InvalidTransitionError,
  newId,
  NotFoundError,
  type TaskState,
  type TaskVerb,
} from "../../../src/kernel/index.js";
import { ModelCommand, refusal, type Tally } from "./run.js";

/**
 * The legal moves (docs/data-model.md, seed 001): a task is queued once, from `created`; it may
 * start from `created` or `queued`, and start again when its command is redelivered; `progress`
 * happens only while `started`; it may fail or be cancelled before it succeeds; `succeeded`,
 * `failed` and `cancelled` are final. Written out here rather than taken from the kernel, so the
 * model does not inherit a mistake of the code it checks.
 */
const LEGAL: Readonly<Record<TaskState, Partial<Record<TaskVerb, TaskState>>>> = {
  created: { queued: "queued", started: "started", failed: "failed", cancelled: "cancelled" },
  queued: { started: "started", failed: "failed", cancelled: "cancelled" },
  started: {
    started: "started",
    progress: "started",
    succeeded: "succeeded",
    failed: "failed",
    cancelled: "cancelled",
  },
  succeeded: {},
  failed: {},
  cancelled: {},
};
const FINAL: ReadonlySet<TaskState> = new Set(["succeeded", "failed", "cancelled"]);
const VERBS: readonly TaskVerb[] = [
  "created",
  "queued",
  "started",
  "progress",
  "succeeded",
  "failed",
  "cancelled",
];
const MAX_TASKS = 4;

interface EventModel {
  readonly verb: TaskVerb;
  readonly actor: string;
  readonly message: string;
  readonly percent: number | null;
}

interface TaskModelEntry {
  state: TaskState;
  version: number;
  percent: number;
  message: string;
  reason: string;
  readonly events: EventModel[];
}

/** The model: the run's tasks, in the order they were created. */
export interface TaskModel {
  readonly tasks: TaskModelEntry[];
}

/** The real store and the ids of the run's tasks (index-aligned with the model's). */
export interface TaskReal {
  readonly tally: Tally;
  readonly t: TestDatabase;
  readonly store: TaskStore;
  readonly ids: string[];
}

/** Applies an accepted verb to a task of the model (what `transition` promises to record). */
function applyVerb(task: TaskModelEntry, verb: TaskVerb, input: TransitionInput): void {
  task.state = LEGAL[task.state][verb]!;
  task.version += 1;
  const percent = verb === "succeeded" ? 100 : verb === "progress" ? (input.percent ?? null) : null;
  if (percent !== null) task.percent = percent;
  if (verb === "progress" || verb === "started") task.message = input.message ?? "";
  if (verb === "failed" || verb === "cancelled") task.reason = input.message ?? verb;
  task.events.push({ verb, actor: input.actor, message: input.message ?? "", percent });
}

const cloneTask = (task: TaskModelEntry): TaskModelEntry => ({
  ...task,
  events: [...task.events],
});

interface Row {
  id: string;
  state: TaskState;
  version: number;
  percent: number;
  message: string;
  reason: string;
  finished: boolean;
  events: { seq: number; verb: string; actor: string; message: string; percent: number | null }[];
}

/**
 * Compares every task of the run with the model: state, version, progress, reason, `finished_at`
 * set exactly when final, and the history — its sequence numbers 1, 2, 3… without a gap or a
 * repeat, each event as recorded.
 */
async function expectTasksMatch(m: TaskModel, r: TaskReal): Promise<void> {
  const rows = await r.t.admin.query<Row & Record<string, unknown>>(
    `SELECT t.id, t.state, t.version, t.progress_percent AS percent, t.progress_message AS message,
            t.reason, t.finished_at IS NOT NULL AS finished,
            (SELECT coalesce(json_agg(json_build_object('seq', e.seq, 'verb', e.verb, 'actor', e.actor,
                       'message', e.message, 'percent', e.percent) ORDER BY e.seq), '[]')
               FROM task.task_events e WHERE e.task_id = t.id) AS events
       FROM task.tasks t WHERE t.id = ANY($1::uuid[]) ORDER BY array_position($1::uuid[], t.id)`,
    [r.ids],
  );
  expect(rows).toEqual(
    m.tasks.map((task, i) => ({
      id: r.ids[i],
      state: task.state,
      version: task.version,
      percent: task.percent,
      message: task.message,
      reason: task.reason,
      finished: FINAL.has(task.state),
      events: task.events.map((e, n) => ({ seq: n + 1, ...e })),
    })),
  );
}

abstract class TaskCommand extends ModelCommand<TaskModel, TaskReal> {
  override async run(m: TaskModel, r: TaskReal): Promise<void> {
    await super.run(m, r);
    await expectTasksMatch(m, r);
  }
}

/** Commands that act on an existing task pick it by `pick % tasks`. */
abstract class OnTask extends TaskCommand {
  constructor(readonly pick: number) {
    super();
  }

  override check(m: Readonly<TaskModel>): boolean {
    return m.tasks.length > 0;
  }

  protected index(m: TaskModel): number {
    return this.pick % m.tasks.length;
  }
}

/** A new task is `created`, version 1, with one event in its history. */
class Create extends TaskCommand {
  override check(m: Readonly<TaskModel>): boolean {
    return m.tasks.length < MAX_TASKS;
  }

  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const task = await inTransaction(r.t.db, (tx) =>
      r.store.create(tx, {
        operation: "network.create",
        resourceKind: "network",
        resourceId: newId(),
        tenantId: newId(),
        datacenterId: "dc1",
        actor: "user:tenant",
        correlationId: newId(),
      }),
    );
    expect(task).toMatchObject({ state: "created", version: 1, progressPercent: 0 });
    r.ids.push(task.id);
    m.tasks.push({
      state: "created",
      version: 1,
      percent: 0,
      message: "",
      reason: "",
      events: [{ verb: "created", actor: "user:tenant", message: "", percent: null }],
    });
  }

  toString(): string {
    return "create()";
  }
}

/** The input of a verb as a worker sends it (a percentage only with `progress`). */
function inputOf(verb: TaskVerb, actor: string, message: string | undefined, percent: number) {
  return {
    actor,
    ...(message === undefined ? {} : { message }),
    ...(verb === "progress" ? { percent } : {}),
  } satisfies TransitionInput;
}

/** A verb: recorded when legal; refused with `InvalidTransitionError`, recording nothing, when not. */
class Transition extends OnTask {
  constructor(
    pick: number,
    readonly verb: TaskVerb,
    readonly message: string | undefined,
    readonly percent: number,
  ) {
    super(pick);
  }

  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const i = this.index(m);
    const task = m.tasks[i]!;
    const id = r.ids[i]!;
    const input = inputOf(this.verb, "worker", this.message, this.percent);
    const moving = inTransaction(r.t.db, (tx) => r.store.transition(tx, id, this.verb, input));
    if (LEGAL[task.state][this.verb] === undefined) {
      const err = await refusal(r.tally, moving);
      expect(err).toBeInstanceOf(InvalidTransitionError);
      expect(err).toMatchObject({ kind: "task", id, from: task.state, to: this.verb });
      return;
    }
    const result = await moving;
    applyVerb(task, this.verb, input);
    expect(result.changed).toBe(true);
    expect(result.task).toMatchObject({
      id,
      state: task.state,
      version: task.version,
      progressPercent: task.percent,
      progressMessage: task.message,
      reason: task.reason,
    });
    expect(result.task.finishedAt !== null).toBe(FINAL.has(task.state));
  }

  toString(): string {
    const percent = this.verb === "progress" ? `, ${this.percent}%` : "";
    const message = this.message === undefined ? "" : `, ${JSON.stringify(this.message)}`;
    return `transition(task #${this.pick}, ${this.verb}${percent}${message})`;
  }
}

/** An operator's replay: only a `failed` task goes back to `queued`, said so in its history. */
class Replay extends OnTask {
  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const i = this.index(m);
    const task = m.tasks[i]!;
    const id = r.ids[i]!;
    const replaying = inTransaction(r.t.db, (tx) =>
      r.store.requeueForReplay(tx, id, { actor: "operator:bob", reason: "switch fixed" }),
    );
    if (task.state !== "failed") {
      const err = await refusal(r.tally, replaying);
      expect(err).toBeInstanceOf(InvalidTransitionError);
      expect(err).toMatchObject({ id, from: task.state, to: "queued (replay)" });
      return;
    }
    const row = await replaying;
    Object.assign(task, { state: "queued", percent: 0, message: "", reason: "" });
    task.version += 1;
    task.events.push({
      verb: "queued",
      actor: "operator:bob",
      message: "replay: switch fixed",
      percent: null,
    });
    expect(row).toMatchObject({ state: "queued", finishedAt: null, version: task.version });
  }

  toString(): string {
    return `requeueForReplay(task #${this.pick})`;
  }
}

/** What a task not started yet waits for: set only before it starts, and only when it changes. */
class DescribeWait extends OnTask {
  constructor(
    pick: number,
    readonly message: string,
  ) {
    super(pick);
  }

  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const i = this.index(m);
    const task = m.tasks[i]!;
    const changes =
      (task.state === "created" || task.state === "queued") && task.message !== this.message;
    const changed = await inTransaction(r.t.db, (tx) =>
      r.store.describeWait(tx, r.ids[i]!, this.message),
    );
    expect(changed).toBe(changes);
    if (changes) {
      task.message = this.message;
      task.version += 1;
    }
  }

  toString(): string {
    return `describeWait(task #${this.pick}, ${JSON.stringify(this.message)})`;
  }
}

/** Following a task (`dv tasks follow`): the history after a sequence number is its tail. */
class Follow extends OnTask {
  constructor(
    pick: number,
    readonly after: number,
  ) {
    super(pick);
  }

  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const i = this.index(m);
    const task = m.tasks[i]!;
    const after = this.after % (task.events.length + 1);
    const events = await r.store.history(r.ids[i]!, undefined, after);
    expect(
      events.map(({ seq, verb, actor, message, percent }) => ({
        seq,
        verb,
        actor,
        message,
        percent,
      })),
    ).toEqual(task.events.slice(after).map((e, n) => ({ seq: after + n + 1, ...e })));
  }

  toString(): string {
    return `history(task #${this.pick}, after ${this.after})`;
  }
}

/** A verb for a task that does not exist: `NotFoundError`. */
class TransitionMissing extends TaskCommand {
  constructor(readonly verb: TaskVerb) {
    super();
  }

  protected async apply(_m: TaskModel, r: TaskReal): Promise<void> {
    const id = newId();
    const err = await refusal(
      r.tally,
      inTransaction(r.t.db, (tx) => r.store.transition(tx, id, this.verb, { actor: "worker" })),
    );
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err).toMatchObject({ kind: "task", id });
  }

  toString(): string {
    return `transition(unknown task, ${this.verb})`;
  }
}

/**
 * Two workers send a verb for the same task at once: the outcome is that of one of the two
 * orders — which calls were refused, the final task and its history (no lost or doubled event).
 */
class Race extends OnTask {
  constructor(
    pick: number,
    readonly first: TaskVerb,
    readonly second: TaskVerb,
  ) {
    super(pick);
  }

  protected async apply(m: TaskModel, r: TaskReal): Promise<void> {
    const i = this.index(m);
    const id = r.ids[i]!;
    const calls = [
      { verb: this.first, input: inputOf(this.first, "worker-1", "first", 30) },
      { verb: this.second, input: inputOf(this.second, "worker-2", "second", 60) },
    ];
    const outcomes = await Promise.allSettled(
      calls.map((c) => inTransaction(r.t.db, (tx) => r.store.transition(tx, id, c.verb, c.input))),
    );
    for (const o of outcomes)
      if (o.status === "rejected") expect(o.reason).toBeInstanceOf(InvalidTransitionError);
    const accepted = outcomes.map((o) => o.status === "fulfilled");
    // Each serial order: which of the two calls it accepts, and the task after it.
    const orders = [
      [0, 1],
      [1, 0],
    ].map((order) => {
      const task = cloneTask(m.tasks[i]!);
      const ok = [false, false];
      for (const n of order) {
        const call = calls[n]!;
        if (LEGAL[task.state][call.verb] === undefined) continue;
        applyVerb(task, call.verb, call.input);
        ok[n] = true;
      }
      return { task, ok };
    });
    const history = await r.store.history(id);
    const seen = history.map((e) => `${e.verb}/${e.actor}`);
    const match = orders.find(
      (o) =>
        o.ok[0] === accepted[0] &&
        o.ok[1] === accepted[1] &&
        o.task.events.map((e) => `${e.verb}/${e.actor}`).join() === seen.join(),
    );
    expect(match, `accepted ${JSON.stringify(accepted)}, history ${seen.join(" ")}`).toBeDefined();
    m.tasks[i] = match!.task;
  }

  toString(): string {
    return `race(task #${this.pick}, ${this.first} ∥ ${this.second})`;
  }
}

const pick = fc.nat(MAX_TASKS - 1);
const verb = fc.constantFrom(...VERBS);
const message = fc.option(fc.constantFrom("applying", "VLAN configured", "switch unreachable"), {
  nil: undefined,
});

/** The commands of the task model. */
export const taskCommands: fc.Arbitrary<fc.AsyncCommand<TaskModel, TaskReal>>[] = [
  fc.constant(null).map(() => new Create()),
  fc
    .tuple(pick, verb, message, fc.integer({ min: 0, max: 100 }))
    .map(([p, v, msg, pct]) => new Transition(p, v, msg, pct)),
  // Workers send the verbs of a healthy run far more often than anything else.
  fc
    .tuple(pick, fc.constantFrom<TaskVerb>("queued", "started", "progress", "succeeded"), message)
    .map(([p, v, msg]) => new Transition(p, v, msg, 50)),
  pick.map((p) => new Replay(p)),
  fc
    .tuple(pick, fc.constantFrom("waiting for site osl", "site link down"))
    .map(([p, msg]) => new DescribeWait(p, msg)),
  fc.tuple(pick, fc.nat(8)).map(([p, after]) => new Follow(p, after)),
  verb.map((v) => new TransitionMissing(v)),
  fc.tuple(pick, verb, verb).map(([p, a, b]) => new Race(p, a, b)),
];

/** No tasks yet: each run creates its own (fresh ids, so runs never see each other's). */
export async function taskSetup(
  t: TestDatabase,
  store: TaskStore,
  tally: Tally,
): Promise<{ model: TaskModel; real: TaskReal }> {
  return { model: { tasks: [] }, real: { tally, t, store, ids: [] } };
}
