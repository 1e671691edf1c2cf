/** The task lifecycle verbs of seed 001, in the order a successful task sees them. */
export const TASK_VERBS = [
  "created",
  "queued",
  "started",
  "progress",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export type TaskVerb = (typeof TASK_VERBS)[number];

/** The states a task can be in; `progress` is an event within `started`, not a state. */
export const TASK_STATES = [
  "created",
  "queued",
  "started",
  "succeeded",
  "failed",
  "cancelled",
] as const;
export type TaskState = (typeof TASK_STATES)[number];

/** States a task never leaves (but for an operator's explicit replay of a failed one). */
export const TERMINAL_STATES: ReadonlySet<TaskState> = new Set([
  "succeeded",
  "failed",
  "cancelled",
]);

const TRANSITIONS: Readonly<Record<TaskState, Partial<Record<TaskVerb, TaskState>>>> = {
  created: { queued: "queued", started: "started", failed: "failed", cancelled: "cancelled" },
  queued: { started: "started", failed: "failed", cancelled: "cancelled" },
  // A redelivered command starts again (`started` → `started`, another attempt in the history).
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

/** The state after `verb` in `state`, or `undefined` when the transition is not allowed. */
export function nextTaskState(state: TaskState, verb: TaskVerb): TaskState | undefined {
  return TRANSITIONS[state][verb];
}

/** True for `succeeded`, `failed` and `cancelled`. */
export function isTerminal(state: TaskState): boolean {
  return TERMINAL_STATES.has(state);
}
