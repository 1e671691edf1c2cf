import type { FastifyRequest } from "fastify";
import { z } from "zod";
import { TASK_STATES } from "../../kernel/index.js";
import { callContext } from "../http-helpers.js";
import { auditOut, taskEventOut, taskOut } from "../represent.js";
import {
  AuditRecord,
  Id,
  line,
  lines,
  ListQuery,
  listOf,
  Ref,
  Task,
  TaskStreamEvent,
} from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const TenantParams = z.strictObject({ tenant: Ref });
const TaskParams = TenantParams.extend({ task: Id });

const TaskListQuery = ListQuery.extend({
  state: z.enum(TASK_STATES).optional(),
  resource: Id.optional().meta({ description: "Only tasks acting on this resource." }),
});

// A time the audit trail can hold: PostgreSQL refuses year 0 (JavaScript's 1 BC), and nothing
// was recorded before 1970 or after 9999.
// A pattern rather than a refinement, so the OpenAPI document says it too.
const AuditTime = z.iso
  .datetime()
  .regex(/^(19[7-9][0-9]|[2-9][0-9]{3})-/, { error: "must be a time from 1970 to 9999" })
  .meta({ description: "RFC 3339, UTC (`Z`), from 1970 to 9999." });

const AuditQuery = ListQuery.omit({ labelSelector: true }).extend({
  resourceKind: line(64).optional(),
  resourceId: line(64).optional(),
  actor: line(256).optional(),
  from: AuditTime.optional().meta({ description: "Records at or after this time." }),
  to: AuditTime.optional().meta({ description: "Records before this time." }),
});

const CancelBody = z
  .strictObject({ reason: lines(500, 1).default("cancelled by request") })
  .prefault({});

/** How often a task stream checks the task even without a notification, and sends a keep-alive. */
const STREAM_POLL_MS = 2_000;
const KEEPALIVE_MS = 15_000;

/** Tasks (list, get with history, follow as Server-Sent Events, cancel) and audit records. */
export function registerTaskRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade, watcher, cursors } = deps;

  app.get(
    "/tenants/:tenant/tasks",
    {
      schema: {
        summary: "List the tenant's tasks, newest first",
        description:
          "Newest first; `nextCursor` continues with older tasks. Tasks created while you page appear on a new first page, never in the middle of one.",
        tags: ["tasks"],
        params: TenantParams,
        querystring: TaskListQuery,
        response: { 200: listOf(Task, "TaskList"), ...problems(400, 404) },
      },
    },
    async (request) => {
      const { state, resource, ...query } = request.query;
      const page = await facade.listTasks(
        callContext(request),
        request.params.tenant,
        { state, resourceId: resource },
        cursors.options(request, query),
      );
      return {
        items: page.items.map((t) => taskOut(t)),
        nextCursor: cursors.next(request, page.next),
      };
    },
  );

  app.get(
    "/tenants/:tenant/tasks/:task",
    {
      schema: {
        summary: "Get a task with its progress and history",
        tags: ["tasks"],
        params: TaskParams,
        response: { 200: Task, ...problems(404) },
      },
    },
    async (request) => {
      const { task, history } = await facade.getTask(
        callContext(request),
        request.params.tenant,
        request.params.task,
      );
      return taskOut(task, history);
    },
  );

  app.get(
    "/tenants/:tenant/tasks/:task/events",
    {
      schema: {
        summary: "Follow a task as Server-Sent Events until it ends",
        description:
          "Sends `task` (the task, first and after every change) and `history` (each history event once, in order) events, and ends with `end` when the task reaches succeeded, failed or cancelled.",
        tags: ["tasks"],
        params: TaskParams,
        response: {
          200: {
            description: "The task's events until it ends, as Server-Sent Events.",
            content: { "text/event-stream": { schema: TaskStreamEvent } },
          },
          ...problems(404),
        },
      },
    },
    async (request, reply) => {
      const ctx = callContext(request);
      // Check access (and existence) before switching the connection to a stream.
      await facade.getTask(ctx, request.params.tenant, request.params.task);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        connection: "keep-alive",
        "x-correlation-id": request.id,
        "x-accel-buffering": "no",
      });
      const closed = new AbortController();
      request.raw.on("close", () => closed.abort());
      const write = (event: string, data: unknown): void => {
        raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      };
      let lastSeq = 0;
      let lastVersion = -1;
      let lastBeat = Date.now();
      try {
        while (!closed.signal.aborted) {
          const { task } = await facade.getTask(ctx, request.params.tenant, request.params.task);
          const events = await facade.tasks.history(task.id, undefined, lastSeq);
          if (task.version !== lastVersion) {
            write("task", taskOut(task));
            lastVersion = task.version;
          }
          for (const event of events) {
            write("history", taskEventOut(event));
            lastSeq = event.seq;
          }
          if (facade.isFinished(task)) {
            write("end", { state: task.state });
            break;
          }
          if (Date.now() - lastBeat > KEEPALIVE_MS) {
            raw.write(": keep-alive\n\n");
            lastBeat = Date.now();
          }
          await watcher.wait(task.id, STREAM_POLL_MS, closed.signal);
        }
      } catch (err) {
        request.log.warn({ err }, "task stream ended by an error");
        write("error", { detail: "the stream failed; GET the task to see where it is" });
      } finally {
        raw.end();
      }
    },
  );

  app.post(
    "/tenants/:tenant/tasks/:task/cancel",
    {
      schema: {
        summary: "Cancel a task that has not ended",
        description:
          "The platform stops working towards the task's target; work a domain service already did stays done.",
        tags: ["tasks"],
        params: TaskParams,
        body: CancelBody,
        response: { 200: Task, ...problems(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const task = await facade.cancelTask(
        callContext(request),
        request.params.tenant,
        request.params.task,
        request.body.reason,
      );
      return taskOut(task);
    },
  );

  const auditHandler = async (
    tenant: string | undefined,
    request: FastifyRequest,
    query: z.output<typeof AuditQuery>,
  ) => {
    const { resourceKind, resourceId, actor, from, to, limit, cursor } = query;
    const filter = {
      ...(resourceKind ? { resourceKind } : {}),
      ...(resourceId ? { resourceId } : {}),
      ...(actor ? { actor } : {}),
      ...(from ? { from: new Date(from) } : {}),
      ...(to ? { to: new Date(to) } : {}),
    };
    const page = await facade.listAudit(callContext(request), tenant, filter, {
      limit,
      after: cursors.after(request, cursor),
    });
    return { items: page.items.map(auditOut), nextCursor: cursors.next(request, page.next) };
  };

  app.get(
    "/tenants/:tenant/audit",
    {
      schema: {
        summary: "The tenant's audit trail, oldest first",
        tags: ["audit"],
        params: TenantParams,
        querystring: AuditQuery,
        response: { 200: listOf(AuditRecord, "AuditList"), ...problems(400, 403, 404) },
      },
    },
    async (request) => auditHandler(request.params.tenant, request, request.query),
  );

  app.get(
    "/audit",
    {
      schema: {
        summary: "The platform's audit trail (operators)",
        tags: ["audit"],
        querystring: AuditQuery,
        response: { 200: listOf(AuditRecord, "PlatformAuditList"), ...problems(400, 403) },
      },
    },
    async (request) => auditHandler(undefined, request, request.query),
  );
}
