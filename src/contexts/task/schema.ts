import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  pgSchema,
  primaryKey,
  text,
  uuid,
} from "drizzle-orm/pg-core";
import { timestamps, timestamptz, versionColumn } from "../../db/index.js";

/** The task context: long-running operations, their state machine and their history. */
export const task = pgSchema("task");

export const tasks = task.table(
  "tasks",
  {
    id: uuid().primaryKey(),
    tenantId: uuid(),
    projectId: uuid(),
    environmentId: uuid(),
    datacenterId: text().notNull(),
    /** What the task does: `network.create`, `cluster.delete`, … */
    operation: text().notNull(),
    resourceKind: text().notNull(),
    resourceId: uuid().notNull(),
    /** The resource generation this task asks for; it succeeds once that generation is reached. */
    resourceGeneration: bigint({ mode: "number" }).notNull().default(0),
    state: text().notNull(),
    progressPercent: integer().notNull().default(0),
    progressMessage: text().notNull().default(""),
    /** Why it failed or was cancelled; empty otherwise. */
    reason: text().notNull().default(""),
    actor: text().notNull(),
    correlationId: text().notNull(),
    /** W3C trace context of the request that made the task; the work it causes continues it. */
    traceparent: text(),
    finishedAt: timestamptz(),
    version: versionColumn(),
    ...timestamps(),
  },
  (t) => [
    check(
      "tasks_state",
      sql`${t.state} IN ('created', 'queued', 'started', 'succeeded', 'failed', 'cancelled')`,
    ),
    check("tasks_progress_range", sql`${t.progressPercent} BETWEEN 0 AND 100`),
    check(
      "tasks_finished_when_terminal",
      sql`(${t.finishedAt} IS NOT NULL) = (${t.state} IN ('succeeded', 'failed', 'cancelled'))`,
    ),
    index("tasks_tenant_created").on(t.tenantId, t.createdAt),
    index("tasks_resource").on(t.resourceId, t.createdAt),
    index("tasks_open")
      .on(t.state)
      .where(sql`${t.state} IN ('created', 'queued', 'started')`),
  ],
);

/** Every transition and progress report of a task, in order. Append-only. */
export const taskEvents = task.table(
  "task_events",
  {
    taskId: uuid()
      .notNull()
      .references(() => tasks.id, { onDelete: "cascade" }),
    seq: integer().notNull(),
    verb: text().notNull(),
    at: timestamptz().notNull().defaultNow(),
    actor: text().notNull(),
    message: text().notNull().default(""),
    percent: integer(),
  },
  (t) => [
    primaryKey({ name: "task_events_pkey", columns: [t.taskId, t.seq] }),
    check(
      "task_events_verb",
      sql`${t.verb} IN ('created', 'queued', 'started', 'progress', 'succeeded', 'failed', 'cancelled')`,
    ),
  ],
);
