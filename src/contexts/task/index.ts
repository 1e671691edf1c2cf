export {
  TASK_CHANNEL,
  type NewTask,
  type Task,
  type TaskEvent,
  TaskStore,
  type TransitionInput,
  type TransitionResult,
} from "./store.js";
export { registerTaskMetrics } from "./metrics.js";
