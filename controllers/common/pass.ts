import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import type { TaskVerb } from "../../src/kernel/index.js";
import type { Logger } from "../../src/observability/index.js";
import type { LeaseGrant } from "../../src/reconcile/index.js";
import type { Allocator } from "./allocator.js";
import { commandFor, type StepSpec } from "./commands.js";
import type { Command, Holdings, StatusWrite, TaskMove } from "./ports.js";
import { conditionsFor, type ResourceStatus, sameStatus, type Summary } from "./status.js";

/** What a kind's plan gives a pass: the steps and the fields it reports. */
export interface KindPlan {
  /** Steps to run in order; the steps of one phase run together. */
  readonly phases: readonly (readonly StepSpec[])[];
  /** Fields the status shows besides conditions (allocations, endpoints …), from step results. */
  observed(steps: ResourceStatus["steps"]): Record<string, unknown>;
}

/** What a kind's hooks see of a pass. */
export interface PassContext {
  readonly resource: Resource;
  readonly status: ResourceStatus;
  readonly allocate: Allocator;
  readonly now: Date;
}

/** What makes one kind of tenant resource: what it reserves, sends and reports. */
export interface KindRules {
  readonly kind: ResourceKind;
  /**
   * Whether a failure rolls the resource back: undo the steps done, release what it holds. A saga
   * (a cluster) does; a one-step resource keeps its reservations so replaying its dead letter can
   * still finish it.
   */
  readonly rollBackOnFailure: boolean;
  /** Reserves what the resource needs (idempotent) and returns its creation steps. */
  plan(ctx: PassContext): Promise<KindPlan>;
  /** The steps that tear the resource down. */
  teardown(resource: Resource, status: ResourceStatus): readonly (readonly StepSpec[])[];
  /**
   * Work after the resource is ready (release superseded allocations, check for drift, …);
   * `run` sends steps like a pass does. A summary other than ready keeps the resource from
   * being reported ready.
   */
  afterReady?(
    ctx: PassContext,
    run: (phases: readonly (readonly StepSpec[])[]) => "done" | "pending",
  ): Promise<Summary | undefined>;
}

/** Why a pass stopped early. */
export class Stall extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly terminal: boolean,
  ) {
    super(message);
  }
}

/** What the batch gives one pass. */
export interface PassInput {
  readonly rules: KindRules;
  readonly resource: Resource;
  /** The status with the outcomes of its commands folded in. */
  readonly status: ResourceStatus;
  /** Its tasks that are open or ask for its generation, oldest first. */
  readonly tasks: readonly Task[];
  readonly allocate: Allocator;
  readonly grant: LeaseGrant;
  readonly now: Date;
  readonly redispatchAfterMs: number;
  /** Commands of the batch that could not be delivered yet, with the last error. */
  readonly undelivered: ReadonlyMap<string, string>;
  /**
   * Reserves under a savepoint: what a failing plan reserved half-way is undone. Unless
   * `mayDefer` is false, a plan that lacks VLANs or prefixes may instead throw the allocator's
   * `DEFERRED`: the batch reserves them with other passes' and runs this pass again.
   */
  planSafely(ctx: PassContext, mayDefer?: boolean): Promise<KindPlan>;
  /** Releases everything the resource holds (immediately, in the batch's unit). */
  releaseAll(): Promise<Holdings>;
  /** Deletes the resource row (immediately); it must hold nothing. */
  remove(): Promise<void>;
  /** The batch's logger, and what this pass adds to each line. */
  readonly log: Logger;
  readonly logContext: Record<string, unknown>;
}

/** What one pass decided; the batch writes every pass's decisions together. */
export interface PassOutcome {
  readonly commands: Command[];
  readonly moves: TaskMove[];
  readonly waits: { taskId: string; message: string }[];
  status?: StatusWrite;
  /** Look again after this long (waiting on commands: the safety net for a lost event). */
  requeueAfterMs?: number;
  /** Retrying cannot help until the spec changes (the status says why). */
  terminal?: string;
}

const OPEN = new Set(["created", "queued", "started"]);

/**
 * One reconcile pass over one tenant resource, on state read for the whole batch: reserves what
 * is scarce, decides the next commands, folds results into status with kstatus conditions and
 * `observedGeneration`, and moves the resource's tasks. A failed step compensates the steps before
 * it (a saga), then releases what the resource held. Deletion tears down first and releases
 * reservations only after the domain service confirmed. Writes are collected, not made: the batch
 * makes them for every pass at once.
 */
export class Pass {
  readonly #in: PassInput;
  readonly #out: PassOutcome = { commands: [], moves: [], waits: [] };
  #context: Record<string, unknown>;
  #logger: Logger | undefined;

  constructor(input: PassInput) {
    this.#in = input;
    this.#context = input.logContext;
  }

  /** A child logger for this resource, made only when a pass logs (most never do). */
  get #log(): Logger {
    this.#logger ??= this.#in.log.child(this.#context);
    return this.#logger;
  }

  async run(): Promise<PassOutcome> {
    const { resource, tasks } = this.#in;
    const open = tasks.filter((t) => OPEN.has(t.state));
    const task = open.at(-1);
    if (task)
      this.#context = { ...this.#context, correlation_id: task.correlationId, task_id: task.id };
    if (resource.deletionRequestedAt) await this.#delete(open);
    else await this.#converge(open);
    return this.#out;
  }

  get #ctx(): PassContext {
    const { resource, status, allocate, now } = this.#in;
    return { resource, status, allocate, now };
  }

  async #converge(open: readonly Task[]): Promise<void> {
    const { resource, status, tasks, rules } = this.#in;
    const generation = resource.generation;
    const forGeneration = tasks.filter((t) => t.resourceGeneration === generation);

    // Cancelled: the platform stops working towards this generation until the spec changes. A
    // command already sent may still be carried out (or skipped by its worker); either way the
    // resource reports it stopped.
    if (forGeneration.length > 0 && forGeneration.every((t) => t.state === "cancelled")) {
      return this.#write(
        {
          phase: "stalled",
          reason: "Cancelled",
          message: `the task for generation ${generation} was cancelled; change the spec to try again`,
        },
        generation,
      );
    }

    // Rolled back for this generation: it stays so until the spec changes.
    if (status.rolledBack === generation) {
      this.#finish(
        open,
        "failed",
        "the resource was rolled back after a failed step; change the spec to try again",
      );
      return;
    }

    const failed = Object.entries(status.steps).find(
      ([name, r]) =>
        r.generation === generation && r.state === "failed" && !name.startsWith("undo:"),
    );
    if (failed)
      return rules.rollBackOnFailure ? this.#compensate(failed, open) : this.#stall(failed, open);

    let plan: KindPlan;
    try {
      plan = await this.#in.planSafely(this.#ctx);
    } catch (err) {
      if (!(err instanceof Stall)) throw err;
      if (err.terminal) {
        this.#finish(open, "failed", err.message);
        this.#out.terminal = err.message;
      }
      return this.#write(
        { phase: "stalled", reason: err.reason, message: err.message },
        err.terminal ? generation : undefined,
      );
    }
    const progress = this.#run(plan.phases, open.at(-1) ?? null);
    for (const [field, value] of Object.entries(plan.observed(status.steps))) status[field] = value;
    if (progress === "pending") return this.#waiting(open);

    const after = await rules.afterReady?.(this.#ctx, (phases) => this.#run(phases, null));
    if (after) {
      const pending = after.phase === "reconciling";
      return this.#write(
        after,
        pending ? undefined : generation,
        pending ? this.#lookAgainMs() : undefined,
      );
    }
    const finishing = open.filter((t) => t.resourceGeneration <= generation);
    this.#finish(finishing, "succeeded", "");
    if (finishing.length > 0)
      this.#log.info({ generation, tasks: finishing.length }, "ready: the open tasks succeeded");
    return this.#write(
      { phase: "ready", message: `generation ${generation} is in place` },
      generation,
    );
  }

  /** A failed step of a one-step resource: it stalls, keeping what it holds for a replay. */
  #stall([name, record]: [string, ResourceStatus["steps"][string]], open: readonly Task[]): void {
    const error = record.error ?? "a step failed";
    this.#finish(open, "failed", error);
    this.#write(
      {
        phase: "stalled",
        reason: failedReason(name),
        message: `${error} (replay its dead letter after fixing the cause, or change the spec)`,
      },
      this.#in.resource.generation,
    );
  }

  /** A failed step of a saga: undo the steps done, in reverse, then release and stall. */
  async #compensate(
    [name, record]: [string, ResourceStatus["steps"][string]],
    open: readonly Task[],
  ): Promise<void> {
    const { resource, status } = this.#in;
    const generation = resource.generation;
    // Undoing needs no new reservations: what is not held is not undone.
    const plan = await this.#in.planSafely(this.#ctx, false).catch(() => undefined);
    const undo = (plan?.phases ?? [])
      .flat()
      .filter((s) => s.undo && this.#current(s.name)?.state === "done")
      .reverse()
      .map((s): StepSpec => {
        const u = s.undo as NonNullable<StepSpec["undo"]>;
        return {
          name: `undo:${s.name}`,
          target: s.target ?? s.name,
          service: u.service,
          action: u.action,
          data: u.data,
        };
      });
    // One step at a time.
    const progress = this.#run(
      undo.map((u) => [u]),
      null,
    );
    const error = record.error ?? "a step failed";
    if (progress === "pending") {
      return this.#write(
        {
          phase: "reconciling",
          reason: "Compensating",
          message: `${name} failed (${record.error ?? "unknown"}); undoing the steps before it`,
        },
        undefined,
        this.#lookAgainMs(),
      );
    }
    await this.#in.releaseAll();
    this.#finish(open, "failed", error);
    status.rolledBack = generation;
    this.#log.warn({ step: name }, "resource rolled back; what it held was released");
    this.#write({ phase: "stalled", reason: failedReason(name), message: error }, generation);
  }

  /** Commands are out: the tasks are queued, and the status says what it waits for. */
  #waiting(open: readonly Task[]): void {
    const { resource, status, undelivered } = this.#in;
    const waiting = Object.entries(status.steps)
      .filter(([, r]) => r.generation === resource.generation && r.state === "pending")
      .map(([n]) => n);
    this.#queue(open);
    // A command that cannot reach its site yet (the site link is down) waits in the outbox;
    // the resource and its task say so rather than wait silently.
    let blocked: string | undefined;
    for (const name of waiting) {
      const command = status.steps[name]?.command;
      blocked ??= command ? undelivered.get(command) : undefined;
    }
    if (blocked)
      for (const task of open)
        if (task.state === "created" || task.state === "queued")
          this.#out.waits.push({ taskId: task.id, message: `waiting: ${blocked}` });
    this.#write(
      blocked
        ? {
            phase: "reconciling",
            reason: "Undelivered",
            message: `waiting for ${waiting.join(", ")}: ${blocked}`,
          }
        : {
            phase: "reconciling",
            reason: "Provisioning",
            message: `waiting for ${waiting.join(", ") || "the next step"}`,
          },
      undefined,
      this.#lookAgainMs(),
    );
  }

  async #delete(open: readonly Task[]): Promise<void> {
    const { resource, status, rules } = this.#in;
    // Let commands in flight settle before tearing down what they build (an observation builds
    // nothing: it is not waited for).
    const inFlight = Object.entries(status.steps).filter(
      ([n, r]) => r.state === "pending" && !n.startsWith("delete:") && r.action !== "observe",
    );
    if (inFlight.length > 0) {
      return this.#write(
        {
          phase: "reconciling",
          reason: "Deleting",
          message: `waiting for ${inFlight.map(([n]) => n).join(", ")} before tearing down`,
        },
        undefined,
        this.#lookAgainMs(),
      );
    }
    const phases = rules
      .teardown(resource, status)
      .map((phase) =>
        phase.map((s) => ({ ...s, name: `delete:${s.name}`, target: s.target ?? s.name })),
      );
    const deleteTask = open.filter((t) => t.operation.endsWith(".delete")).at(-1) ?? null;
    const progress = this.#run(phases, deleteTask);
    const failed = Object.entries(status.steps).find(
      ([n, r]) => n.startsWith("delete:") && r.state === "failed",
    );
    if (failed) {
      const error = failed[1].error ?? "teardown failed";
      this.#finish(open, "failed", error);
      return this.#write(
        { phase: "stalled", reason: "DeleteFailed", message: error },
        resource.generation,
      );
    }
    if (progress === "pending") {
      this.#queue(open);
      return this.#write(
        { phase: "reconciling", reason: "Deleting", message: "tearing down" },
        undefined,
        this.#lookAgainMs(),
      );
    }
    const released = await this.#in.releaseAll();
    await this.#in.remove();
    for (const task of open) {
      const verb: TaskVerb = task.operation.endsWith(".delete") ? "succeeded" : "cancelled";
      if (verb === "succeeded" && task.state !== "started")
        this.#move(task, "started", "carried out by the teardown");
      this.#move(task, verb, verb === "cancelled" ? "the resource was deleted" : "");
    }
    this.#log.info(
      {
        released: {
          vlans: released.vlans.length,
          prefixes: released.prefixes.length,
          servers: released.servers.length,
        },
      },
      "resource deleted",
    );
  }

  #current(name: string): ResourceStatus["steps"][string] | undefined {
    const r = this.#in.status.steps[name];
    return r && r.generation === this.#in.resource.generation ? r : undefined;
  }

  /**
   * Walks phases in order: sends the steps of the first unfinished phase that have no command for
   * this generation yet, sends again commands left unanswered too long, and says whether
   * everything is done.
   */
  #run(phases: readonly (readonly StepSpec[])[], task: Task | null): "done" | "pending" {
    const { resource, status, now, redispatchAfterMs, grant } = this.#in;
    const generation = resource.generation;
    for (const phase of phases) {
      let complete = true;
      for (const step of phase) {
        const record = status.steps[step.name];
        const current = record && record.generation === generation ? record : undefined;
        if (current?.state === "done") continue;
        complete = false;
        if (current?.state === "pending") {
          if (now.getTime() - Date.parse(current.dispatchedAt) > redispatchAfterMs) {
            this.#out.commands.push(
              commandFor({
                resource,
                step,
                attempt: current.attempt,
                task,
                grant,
                now,
                again: true,
              }),
            );
            status.steps[step.name] = { ...current, dispatchedAt: now.toISOString() };
          }
          continue;
        }
        if (current?.state === "failed") continue;
        // A new command: the first for this generation, or the next attempt of a stale step.
        const attempt = current ? current.attempt + 1 : 0;
        const command = commandFor({ resource, step, attempt, task, grant, now, again: false });
        this.#out.commands.push(command);
        status.steps[step.name] = {
          command: command.id,
          service: step.service,
          action: step.action,
          generation,
          attempt,
          dispatchedAt: now.toISOString(),
          state: "pending",
        };
      }
      if (!complete) return "pending";
    }
    return "done";
  }

  #queue(tasks: readonly Task[]): void {
    for (const task of tasks) if (task.state === "created") this.#move(task, "queued", "");
  }

  #finish(tasks: readonly Task[], verb: "succeeded" | "failed", reason: string): void {
    for (const task of tasks) {
      if (verb === "succeeded" && task.state !== "started") {
        // The state machine goes through started; a task the worker never touched (an older
        // generation superseded by a newer one) is started and finished by the platform.
        this.#move(task, "started", "carried out by a later generation");
      }
      this.#move(task, verb, reason);
    }
  }

  #move(task: Task, verb: TaskVerb, message: string): void {
    this.#out.moves.push({ task, verb, message });
  }

  /**
   * When to look again at a resource waiting for commands: once the first of them is due to be
   * sent again. Its outcome event queues the resource sooner; this is the safety net for an
   * event that never came, not a poll.
   */
  #lookAgainMs(): number {
    const { status, now, redispatchAfterMs } = this.#in;
    let due = redispatchAfterMs;
    for (const record of Object.values(status.steps)) {
      if (record.state !== "pending") continue;
      const left = Date.parse(record.dispatchedAt) + redispatchAfterMs - now.getTime();
      due = Math.min(due, left);
    }
    return Math.max(1_000, due + 100);
  }

  /** Writes status when it changed, and when to look again. */
  #write(summary: Summary, observedGeneration: number | undefined, requeueAfterMs?: number): void {
    const { resource, status, now } = this.#in;
    const next: ResourceStatus = {
      ...status,
      conditions: conditionsFor(summary, status.conditions, resource.generation, now),
    };
    const observed = observedGeneration ?? resource.observedGeneration;
    if (!sameStatus(next, resource.status) || observed !== resource.observedGeneration) {
      this.#out.status = {
        id: resource.id,
        status: next,
        observedGeneration: observed,
        version: resource.version,
      };
    }
    if (requeueAfterMs !== undefined) this.#out.requeueAfterMs = requeueAfterMs;
  }
}

/** `NetworkFailed` for a failed step `network`, `ServerFailed` for `server:web-1`. */
function failedReason(step: string): string {
  return `${step[0]?.toUpperCase() ?? ""}${step.slice(1).replace(/:.*/, "")}Failed`;
}
