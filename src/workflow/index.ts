export { type TaskEventContext, TaskService } from "./tasks.js";
