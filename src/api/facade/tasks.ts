import { actorOf } from "../../auth/index.js";
import type { Task, TaskEvent } from "../../contexts/task/index.js";
import { inTransaction } from "../../db/index.js";
import {
  isTerminal,
  type ListOptions,
  NotFoundError,
  type Page,
  type TaskState,
} from "../../kernel/index.js";
import type { FacadeCore } from "./core.js";
import { auditEntry, type CallContext, clean, requireWrite } from "./scope.js";

/** A tenant's tasks: listed, read with their history, cancelled. */
export class TaskFacade {
  readonly #core: FacadeCore;

  constructor(core: FacadeCore) {
    this.#core = core;
  }

  async listTasks(
    ctx: CallContext,
    tenantRef: string,
    filter: { state?: TaskState | undefined; resourceId?: string | undefined },
    options: ListOptions,
  ): Promise<Page<Task>> {
    const { scope, tasks } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const page = await tasks.list({ tenantId, ...clean(filter) }, options);
    const projectScope = ctx.principal.project;
    if (projectScope === undefined) return page;
    const projectId = await scope.projectId(ctx, tenantId, projectScope);
    return { ...page, items: page.items.filter((t) => t.projectId === projectId) };
  }

  /** A task of the tenant with its history. @throws {NotFoundError} */
  async getTask(
    ctx: CallContext,
    tenantRef: string,
    id: string,
  ): Promise<{ task: Task; history: TaskEvent[] }> {
    const { scope, tasks } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const task = await tasks.get(id, { tenantId });
    if (ctx.principal.project !== undefined) {
      const projectId = await scope.projectId(ctx, tenantId, ctx.principal.project);
      if (task.projectId !== projectId) throw new NotFoundError("task", id);
    }
    return { task, history: await tasks.history(id) };
  }

  /**
   * Cancels a task that has not ended: the platform stops working towards its generation.
   *
   * @throws {InvalidTransitionError} when it already ended.
   */
  async cancelTask(ctx: CallContext, tenantRef: string, id: string, reason: string): Promise<Task> {
    const { task } = await this.getTask(ctx, tenantRef, id);
    requireWrite(ctx, "cancel tasks");
    return inTransaction(this.#core.db, async (tx) => {
      const cancelled = await this.#core.taskService.transition(
        tx,
        task.id,
        "cancelled",
        { actor: actorOf(ctx.principal), message: reason },
        { correlationId: ctx.correlationId },
      );
      await this.#core.audit.record(
        tx,
        auditEntry(ctx, {
          tenantId: task.tenantId,
          datacenterId: task.datacenterId,
          projectId: task.projectId,
          action: "task.cancel",
          resourceKind: "task",
          resourceId: task.id,
          before: { state: task.state },
          after: { state: cancelled.state, reason },
        }),
      );
      return cancelled;
    });
  }

  /** True once the task can no longer change. */
  isFinished(task: Task): boolean {
    return isTerminal(task.state);
  }
}
