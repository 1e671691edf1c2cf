import { z } from "zod";
import { TASK_STATES, TASK_VERBS, type TaskVerb } from "../kernel/index.js";
import type { MessageDefinition, MessageRegistry } from "./registry.js";
import { taskSubject } from "./subjects.js";

/** Payload of every `dv.task.evt.<verb>` message. */
export const taskEventData = z.object({
  task_id: z.string(),
  operation: z.string(),
  state: z.enum(TASK_STATES),
  resource_kind: z.string(),
  resource_id: z.string(),
  percent: z.number().int().min(0).max(100).optional(),
  message: z.string().optional(),
});

/** Defines the seven task lifecycle events (`task.created` … `task.cancelled`) in `registry`. */
export function defineTaskEvents(
  registry: MessageRegistry,
): Record<TaskVerb, MessageDefinition<typeof taskEventData>> {
  return Object.fromEntries(
    TASK_VERBS.map((verb) => [
      verb,
      registry.define({
        type: `task.${verb}`,
        version: 1,
        source: "sentral",
        subject: taskSubject(verb),
        description: `A task ${verb === "progress" ? "reported progress" : `was ${verb}`}.`,
        data: taskEventData,
      }),
    ]),
  ) as Record<TaskVerb, MessageDefinition<typeof taskEventData>>;
}
