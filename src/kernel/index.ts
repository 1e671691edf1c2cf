export {
  AlreadyExistsError,
  CapacityExhaustedError,
  InUseError,
  InvalidReferenceError,
  InvalidTransitionError,
  NotFoundError,
  OverlapError,
  type PoolResource,
  PoolExhaustedError,
  QuotaExceededError,
  VersionConflictError,
} from "./errors.js";
export {
  isTerminal,
  nextTaskState,
  TASK_STATES,
  TASK_VERBS,
  type TaskState,
  type TaskVerb,
  TERMINAL_STATES,
} from "./tasks.js";
export {
  type LabelRequirement,
  LabelSelectorError,
  matchesLabels,
  parseLabelSelector,
} from "./labels.js";
export { type ListOptions, type Page, toPage } from "./pagination.js";
export { type IdGenerator, newId, isUuid } from "./ids.js";
export { sameJson } from "./json.js";
export { GroupCommit, type Settled } from "./group-commit.js";
