// Workflows over the contexts: a task's lifecycle with its events, and dead letters (recorded,
// replayed, discarded) — each a state change and its announcements in one transaction.
export {
  type DeadLetterInput,
  DeadLetterService,
  type DeadLetterServiceDeps,
} from "./dead-letters.js";
export { type TaskEventContext, TaskService } from "./tasks.js";
