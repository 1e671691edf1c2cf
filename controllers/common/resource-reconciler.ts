import { Counter, type Registry } from "prom-client";
import { v5 as uuidv5 } from "uuid";
import type { Services } from "../../src/app/index.js";
import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import { FencedError, type LeaseStore } from "../../src/contexts/runtime/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import { inTransaction, type Tx, withSavepoint } from "../../src/db/index.js";
import {
  InvalidTransitionError,
  NotFoundError,
  type PoolExhaustedError,
  type TaskVerb,
  VersionConflictError,
} from "../../src/kernel/index.js";
import {
  createEnvelope,
  domainCommands,
  messageHeaders,
  type WorkerService,
} from "../../src/messaging/index.js";
import { inSpan, type Logger, SpanKind, traceparentOf } from "../../src/observability/index.js";
import {
  keyId,
  type LeaseGrant,
  type ReconcileResult,
  type Reconciler,
  shardOf,
  TerminalError,
} from "../../src/reconcile/index.js";
import { CommandOutcomes } from "./outcomes.js";
import {
  conditionsFor,
  type ResourceStatus,
  readStatus,
  sameStatus,
  type StepRecord,
  type Summary,
} from "./status.js";

/** Namespace of deterministic command ids (uuid v5 of resource, generation, step, attempt). */
const COMMAND_NAMESPACE = "5b7c52f0-8d3c-4c55-9a8e-6f6f0a9e2d11";

/** One command of a resource's workflow. */
export interface StepSpec {
  readonly name: string;
  /**
   * The device step the command acts on, when it is not the step's own name: a teardown
   * (`delete:network`) or an undo (`undo:network`) acts on `network`.
   */
  readonly target?: string;
  readonly service: WorkerService;
  readonly action: string;
  readonly data: Record<string, unknown>;
  /** The command that undoes this step when a later one fails (saga compensation). */
  readonly undo?: {
    readonly service: WorkerService;
    readonly action: string;
    readonly data: Record<string, unknown>;
  };
}

/** What a kind needs to provide for one pass. */
export interface KindPlan {
  /** Steps to run in order; the steps of one phase run together. */
  readonly phases: readonly (readonly StepSpec[])[];
  /** Fields the status shows besides conditions (allocations, endpoints …), from step results. */
  observed(steps: Readonly<Record<string, StepRecord>>): Record<string, unknown>;
}

/** How a reconciler reaches the world. */
export interface ReconcilerDeps {
  readonly services: Services;
  readonly leases: LeaseStore;
  readonly holder: string;
  readonly shards: number;
  grant(shard: number): LeaseGrant | undefined;
  readonly now: () => Date;
  /** A pending command not answered for this long is sent again (same id: it is de-duplicated). */
  readonly redispatchAfterMs: number;
  readonly metrics?: Registry;
}

let fencingCounters = new WeakMap<Registry, Counter<"controller">>();

/** What one pass learned that matters after its transaction. */
interface Pass {
  terminal: string | undefined;
}

/** Why a pass stopped early. */
class Stall extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly terminal: boolean,
  ) {
    super(message);
  }
}

/**
 * The reconciler of a tenant resource kind. Each pass reads the resource and what its commands
 * did (from PostgreSQL), then in one transaction fenced by the shard's lease: reserves what is
 * scarce, sends the next commands through the outbox, folds results into status with kstatus
 * conditions and `observedGeneration`, and moves the resource's tasks. A failed step compensates
 * the steps before it, then releases what the resource held. Deletion tears down first and
 * releases reservations only after the domain service confirmed.
 */
export abstract class ResourceReconciler implements Reconciler {
  protected readonly deps: ReconcilerDeps;
  protected readonly outcomes: CommandOutcomes;
  readonly #fenced: Counter<"controller"> | undefined;

  abstract readonly kind: ResourceKind;

  /**
   * Whether a failure rolls the resource back: undo the steps done, release what it holds. A saga
   * (a cluster) does; a one-step resource keeps its reservations so replaying its dead letter can
   * still finish it.
   */
  protected readonly rollBackOnFailure: boolean = false;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
    this.outcomes = new CommandOutcomes(deps.services.inbox, deps.services.deadLetterStore);
    if (deps.metrics) {
      let counter = fencingCounters.get(deps.metrics);
      if (!counter) {
        counter = new Counter({
          name: "dataverket_fencing_rejections_total",
          help: "Reconciler writes PostgreSQL refused because their fencing token was stale",
          labelNames: ["controller"] as const,
          registers: [deps.metrics],
        });
        fencingCounters.set(deps.metrics, counter);
      }
      this.#fenced = counter;
    }
  }

  /** Reserves what the resource needs (idempotent) and returns its creation steps. */
  protected abstract plan(tx: Tx, resource: Resource, status: ResourceStatus): Promise<KindPlan>;

  /** The steps that tear the resource down. */
  protected abstract teardown(
    resource: Resource,
    status: ResourceStatus,
  ): readonly (readonly StepSpec[])[];

  /**
   * Work after the resource is ready (release superseded allocations, check for drift, …);
   * `run` sends steps like a pass does. A summary other than ready keeps the resource from
   * being reported ready.
   */
  protected async afterReady(
    _tx: Tx,
    _resource: Resource,
    _status: ResourceStatus,
    _run: (phases: readonly (readonly StepSpec[])[]) => Promise<"done" | "pending">,
  ): Promise<Summary | undefined> {
    return undefined;
  }

  async reconcile(key: string, log: Logger): Promise<ReconcileResult | undefined> {
    const id = keyId(key);
    const grant = this.deps.grant(shardOf(id, this.deps.shards));
    if (!grant) return undefined; // not this replica's shard (any more)
    let resource: Resource;
    try {
      resource = await this.deps.services.inventory.getResourceById(id);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
    const status = readStatus(resource.status);
    await this.#refresh(status);
    try {
      // Set by a pass that finds retrying pointless; a TerminalError only after its commit.
      const pass: Pass = { terminal: undefined };
      const result = await inTransaction(this.deps.services.db, async (tx) => {
        await this.deps.leases.checkFence(tx, grant, this.deps.holder);
        return resource.deletionRequestedAt
          ? this.#delete(tx, resource, status, grant, log)
          : this.#converge(tx, resource, status, grant, log, pass);
      });
      if (pass.terminal !== undefined) throw new TerminalError(pass.terminal);
      return result;
    } catch (err) {
      if (err instanceof FencedError) {
        this.#fenced?.inc({ controller: this.kind });
        log.warn(
          { shard: err.shard, token: err.token },
          "write refused: the shard's lease moved on",
        );
        return undefined;
      }
      if (err instanceof VersionConflictError) throw err; // the resource changed meanwhile: retry soon
      throw err;
    }
  }

  /**
   * Folds what became of commands into their records (reads only). Failed ones are looked at
   * again too: an operator may have replayed their dead letter.
   */
  async #refresh(status: ResourceStatus): Promise<void> {
    for (const [name, record] of Object.entries(status.steps)) {
      // Done is final; stale waits to be sent again, whatever its old command answered.
      if (record.state === "done" || record.state === "stale") continue;
      if (record.state === "failed" && status.rolledBack === record.generation) continue;
      const outcome = await this.outcomes.lookup(record.service as WorkerService, record.command);
      if (outcome.state === "done") {
        const { error: _previous, ...rest } = record;
        status.steps[name] = { ...rest, state: "done", result: outcome.result };
      } else if (outcome.state === "failed") {
        status.steps[name] = { ...record, state: "failed", error: outcome.reason };
      } else if (record.state === "failed") {
        // Its dead letter was replayed and the new command is on its way: in flight again.
        status.steps[name] = { ...record, state: "pending" };
      }
    }
  }

  async #converge(
    tx: Tx,
    resource: Resource,
    status: ResourceStatus,
    grant: LeaseGrant,
    log: Logger,
    pass: Pass,
  ): Promise<ReconcileResult | undefined> {
    const generation = resource.generation;
    const tasks = await this.deps.services.taskStore.allFor(resource.id, tx);
    const open = tasks.filter((t) => ["created", "queued", "started"].includes(t.state));
    const correlationId = open.at(-1)?.correlationId;
    log = log.child({
      tenant_id: resource.tenantId,
      ...(correlationId ? { correlation_id: correlationId, task_id: open.at(-1)?.id } : {}),
    });
    const forGeneration = tasks.filter((t) => t.resourceGeneration === generation);
    const current = (name: string) => {
      const r = status.steps[name];
      return r && r.generation === generation ? r : undefined;
    };

    // Cancelled: the platform stops working towards this generation until the spec changes. A
    // command already sent may still be carried out (or skipped by its worker); either way the
    // resource reports it stopped.
    if (forGeneration.length > 0 && forGeneration.every((t) => t.state === "cancelled")) {
      return this.#write(
        tx,
        resource,
        status,
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
      await this.#finishTasks(
        tx,
        open,
        generation,
        "failed",
        "the resource was rolled back after a failed step; change the spec to try again",
      );
      return undefined;
    }

    // A failed step: stall; a saga first undoes what was done and releases what it holds.
    const failed = Object.entries(status.steps).find(
      ([name, r]) =>
        r.generation === generation && r.state === "failed" && !name.startsWith("undo:"),
    );
    if (failed && !this.rollBackOnFailure) {
      const [failedName, failedRecord] = failed;
      await this.#finishTasks(
        tx,
        open,
        generation,
        "failed",
        failedRecord.error ?? "a step failed",
      );
      const reason = `${failedName[0]?.toUpperCase() ?? ""}${failedName.slice(1).replace(/:.*/, "")}Failed`;
      return this.#write(
        tx,
        resource,
        status,
        {
          phase: "stalled",
          reason,
          message: `${failedRecord.error ?? "a step failed"} (replay its dead letter after fixing the cause, or change the spec)`,
        },
        generation,
      );
    }
    if (failed) {
      const [failedName, failedRecord] = failed;
      const plan = await this.#planSafely(tx, resource, status).catch(() => undefined);
      const undo = (plan?.phases ?? [])
        .flat()
        .filter((s) => s.undo && current(s.name)?.state === "done")
        .reverse()
        .map((s) => {
          const undo = s.undo as NonNullable<StepSpec["undo"]>;
          return {
            name: `undo:${s.name}`,
            target: s.target ?? s.name,
            service: undo.service,
            action: undo.action,
            data: undo.data,
          };
        });
      // Undo in reverse order, one step at a time.
      const progress = await this.#run(
        tx,
        resource,
        status,
        undo.map((u) => [u]),
        null,
        grant,
      );
      const reason = `${failedName[0]?.toUpperCase() ?? ""}${failedName.slice(1).replace(/:.*/, "")}Failed`;
      if (progress === "pending") {
        return this.#write(
          tx,
          resource,
          status,
          {
            phase: "reconciling",
            reason: "Compensating",
            message: `${failedName} failed (${failedRecord.error ?? "unknown"}); undoing the steps before it`,
          },
          undefined,
          this.#lookAgainMs(status),
        );
      }
      await this.deps.services.inventory.releaseAll(tx, { kind: resource.kind, id: resource.id });
      await this.#finishTasks(
        tx,
        open,
        generation,
        "failed",
        failedRecord.error ?? "a step failed",
      );
      status.rolledBack = generation;
      log.warn({ step: failedName }, "resource rolled back; what it held was released");
      return this.#write(
        tx,
        resource,
        status,
        { phase: "stalled", reason, message: failedRecord.error ?? "a step failed" },
        generation,
      );
    }

    let plan: KindPlan;
    try {
      plan = await this.#planSafely(tx, resource, status);
    } catch (err) {
      if (!(err instanceof Stall)) throw err;
      if (err.terminal) await this.#finishTasks(tx, open, generation, "failed", err.message);
      const result = await this.#write(
        tx,
        resource,
        status,
        { phase: "stalled", reason: err.reason, message: err.message },
        err.terminal ? generation : undefined,
      );
      // Retrying cannot help until the spec changes; the controller learns it after the commit.
      if (err.terminal) pass.terminal = err.message;
      return result;
    }
    const progress = await this.#run(tx, resource, status, plan.phases, open.at(-1) ?? null, grant);
    for (const [field, value] of Object.entries(plan.observed(status.steps))) status[field] = value;
    if (progress === "pending") {
      const waiting = Object.entries(status.steps)
        .filter(([, r]) => r.generation === generation && r.state === "pending")
        .map(([n]) => n);
      await this.#queueTasks(tx, open);
      // A command that cannot reach its site yet (the site link is down) waits in the outbox;
      // the resource and its task say so rather than wait silently.
      const undelivered = await this.deps.services.outbox.undelivered(
        waiting.map((n) => status.steps[n]?.command).filter((c): c is string => !!c),
        tx,
      );
      const blocked = undelivered[0]?.lastError;
      if (blocked)
        for (const task of open)
          await this.deps.services.taskStore.describeWait(tx, task.id, `waiting: ${blocked}`);
      return this.#write(
        tx,
        resource,
        status,
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
        this.#lookAgainMs(status),
      );
    }
    const after = await this.afterReady(tx, resource, status, (phases) =>
      this.#run(tx, resource, status, phases, null, grant),
    );
    if (after) {
      const pending = after.phase === "reconciling";
      return this.#write(
        tx,
        resource,
        status,
        after,
        pending ? undefined : generation,
        pending ? this.#lookAgainMs(status) : undefined,
      );
    }
    const finishing = open.filter((t) => t.resourceGeneration <= generation);
    await this.#finishTasks(tx, finishing, generation, "succeeded", "");
    if (finishing.length > 0)
      log.info({ generation, tasks: finishing.length }, "ready: the open tasks succeeded");
    return this.#write(
      tx,
      resource,
      status,
      { phase: "ready", message: `generation ${generation} is in place` },
      generation,
    );
  }

  async #delete(
    tx: Tx,
    resource: Resource,
    status: ResourceStatus,
    grant: LeaseGrant,
    log: Logger,
  ): Promise<ReconcileResult | undefined> {
    const tasks = await this.deps.services.taskStore.openFor(resource.id, tx);
    const correlationId = tasks.at(-1)?.correlationId;
    log = log.child({
      tenant_id: resource.tenantId,
      ...(correlationId ? { correlation_id: correlationId, task_id: tasks.at(-1)?.id } : {}),
    });
    // Let commands in flight settle before tearing down what they build.
    const inFlight = Object.entries(status.steps).filter(
      ([n, r]) => r.state === "pending" && !n.startsWith("delete:"),
    );
    if (inFlight.length > 0) {
      return this.#write(
        tx,
        resource,
        status,
        {
          phase: "reconciling",
          reason: "Deleting",
          message: `waiting for ${inFlight.map(([n]) => n).join(", ")} before tearing down`,
        },
        undefined,
        this.#lookAgainMs(status),
      );
    }
    const phases = this.teardown(resource, status).map((phase) =>
      phase.map((s) => ({ ...s, name: `delete:${s.name}`, target: s.target ?? s.name })),
    );
    const deleteTask = tasks.filter((t) => t.operation.endsWith(".delete")).at(-1) ?? null;
    const progress = await this.#run(tx, resource, status, phases, deleteTask, grant);
    const failed = Object.entries(status.steps).find(
      ([n, r]) => n.startsWith("delete:") && r.state === "failed",
    );
    if (failed) {
      await this.#finishTasks(
        tx,
        tasks,
        resource.generation,
        "failed",
        failed[1].error ?? "teardown failed",
      );
      return this.#write(
        tx,
        resource,
        status,
        { phase: "stalled", reason: "DeleteFailed", message: failed[1].error ?? "teardown failed" },
        resource.generation,
      );
    }
    if (progress === "pending") {
      await this.#queueTasks(tx, tasks);
      return this.#write(
        tx,
        resource,
        status,
        { phase: "reconciling", reason: "Deleting", message: "tearing down" },
        undefined,
        this.#lookAgainMs(status),
      );
    }
    const released = await this.deps.services.inventory.releaseAll(tx, {
      kind: resource.kind,
      id: resource.id,
    });
    await this.deps.services.inventory.removeResource(tx, resource.id);
    for (const task of tasks) {
      const verb: TaskVerb = task.operation.endsWith(".delete") ? "succeeded" : "cancelled";
      await this.#move(tx, task, verb, verb === "cancelled" ? "the resource was deleted" : "");
    }
    log.info(
      {
        released: {
          vlans: released.vlans.length,
          prefixes: released.prefixes.length,
          servers: released.servers.length,
        },
      },
      "resource deleted",
    );
    return undefined;
  }

  async #planSafely(tx: Tx, resource: Resource, status: ResourceStatus): Promise<KindPlan> {
    try {
      // A savepoint: a reservation that fails half-way (three of four servers) leaves nothing.
      return await withSavepoint(tx, (savepoint) => this.plan(savepoint, resource, status));
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "DV_POOL_EXHAUSTED") {
        // An empty pool may be one that is gone or refused, not one that is used up: say which.
        const unusable = await this.#unusablePool(tx, resource, err as PoolExhaustedError);
        if (unusable) throw new Stall("PoolUnavailable", unusable, true);
      }
      if (code === "DV_POOL_EXHAUSTED" || code === "DV_CAPACITY_EXHAUSTED") {
        throw new Stall("InsufficientCapacity", (err as Error).message, true);
      }
      if (code === "DV_NOT_FOUND") throw new Stall("InvalidSpec", (err as Error).message, true);
      throw err;
    }
  }

  /** Why a network pool that looked exhausted cannot be used at all, if that is the case. */
  async #unusablePool(
    tx: Tx,
    resource: Resource,
    err: PoolExhaustedError,
  ): Promise<string | undefined> {
    if (err.resource !== "vlan" && err.resource !== "prefix") return undefined;
    const { inventory, platform } = this.deps.services;
    const stalled = await platform.stalled("NetworkPool", err.pool, tx);
    if (stalled) {
      return `network pool "${err.pool}" is Stalled (${stalled.reason}): ${stalled.message}`;
    }
    const networkPools =
      (await inventory.offers(tx)).get(resource.datacenterId)?.networkPools ?? [];
    if (!networkPools.some((p) => p.name === err.pool)) {
      return `network pool "${err.pool}" does not exist in datacenter "${resource.datacenterId}" (it has: ${networkPools.map((p) => p.name).join(", ") || "none"}); change the spec to name one that does`;
    }
    return undefined;
  }

  /**
   * Walks phases in order: dispatches the steps of the first unfinished phase that have no
   * command for this generation yet, re-sends commands left unanswered too long, and says whether
   * everything is done.
   */
  async #run(
    tx: Tx,
    resource: Resource,
    status: ResourceStatus,
    phases: readonly (readonly StepSpec[])[],
    task: Task | null,
    grant: LeaseGrant,
  ): Promise<"done" | "pending"> {
    const generation = resource.generation;
    const now = this.deps.now();
    for (const phase of phases) {
      let complete = true;
      for (const step of phase) {
        const record = status.steps[step.name];
        if (record && record.generation === generation && record.state === "done") continue;
        complete = false;
        if (record && record.generation === generation && record.state === "pending") {
          if (now.getTime() - Date.parse(record.dispatchedAt) > this.deps.redispatchAfterMs) {
            await this.#dispatch(tx, resource, step, record.attempt, task, grant, true);
            status.steps[step.name] = { ...record, dispatchedAt: now.toISOString() };
          }
          continue;
        }
        if (record && record.generation === generation && record.state === "failed") continue;
        // A new command: the first for this generation, or the next attempt of a stale step.
        const attempt = record && record.generation === generation ? record.attempt + 1 : 0;
        const command = await this.#dispatch(tx, resource, step, attempt, task, grant, false);
        status.steps[step.name] = {
          command,
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

  /** Sends a step's command through the outbox; the id is derived, so a re-send is a duplicate. */
  async #dispatch(
    tx: Tx,
    resource: Resource,
    step: StepSpec,
    attempt: number,
    task: Task | null,
    grant: LeaseGrant,
    again: boolean,
  ): Promise<string> {
    const spec = domainCommands[step.service][step.action];
    if (!spec) throw new Error(`no ${step.service} command ${step.action}`);
    const id = uuidv5(
      `${resource.id}/${resource.generation}/${step.name}/${attempt}`,
      COMMAND_NAMESPACE,
    );
    const correlationId = task?.correlationId ?? resource.id;
    const envelope = createEnvelope(
      spec.command,
      {
        resource_kind: resource.kind,
        resource_id: resource.id,
        generation: resource.generation,
        task_id: task?.id ?? null,
        step: step.target ?? step.name,
        ...step.data,
      },
      {
        id,
        time: this.deps.now(),
        subject: resource.id,
        actor: task?.actor ?? "sentral",
        correlationId,
        causationId: task?.id ?? null,
        tenantId: resource.tenantId,
        projectId: resource.projectId,
        environmentId: resource.environmentId,
        datacenterId: resource.datacenterId,
      },
    );
    // The command continues the trace of the request that made the task.
    await inSpan(
      `send ${spec.command.subject}`,
      {
        kind: SpanKind.PRODUCER,
        parent: task?.traceparent ?? null,
        attributes: {
          "messaging.system": "nats",
          "messaging.destination.name": spec.command.subject,
          "messaging.message.id": id,
          "dataverket.correlation_id": correlationId,
          "dataverket.resource_kind": resource.kind,
          "dataverket.resource_id": resource.id,
          "dataverket.step": step.name,
          ...(task ? { "dataverket.task_id": task.id } : {}),
        },
      },
      (span) =>
        this.deps.services.outbox.enqueue(
          tx,
          [
            {
              id,
              subject: spec.command.subject,
              envelope,
              headers: {
                ...messageHeaders(correlationId, traceparentOf(span)),
                "dv-fencing-token": `${grant.shard}:${grant.token}`,
              },
            },
          ],
          { resend: again },
        ),
    );
    return id;
  }

  async #queueTasks(tx: Tx, tasks: readonly Task[]): Promise<void> {
    for (const task of tasks)
      if (task.state === "created") await this.#move(tx, task, "queued", "");
  }

  async #finishTasks(
    tx: Tx,
    tasks: readonly Task[],
    _generation: number,
    verb: "succeeded" | "failed",
    reason: string,
  ): Promise<void> {
    for (const task of tasks) {
      if (verb === "succeeded" && task.state !== "started") {
        // The state machine goes through started; a task the worker never touched (an older
        // generation superseded by a newer one) is started and finished by the platform.
        await this.#move(tx, task, "started", "carried out by a later generation");
      }
      await this.#move(tx, task, verb, reason);
    }
  }

  async #move(tx: Tx, task: Task, verb: TaskVerb, message: string): Promise<void> {
    try {
      await this.deps.services.tasks.transition(
        tx,
        task.id,
        verb,
        { actor: "sentral", message },
        { correlationId: task.correlationId },
      );
    } catch (err) {
      if (!(err instanceof InvalidTransitionError)) throw err;
    }
  }

  /**
   * When to look again at a resource waiting for commands: once the first of them is due to be
   * sent again. Its outcome event queues the resource sooner; this is the safety net for an
   * event that never came, not a poll.
   */
  #lookAgainMs(status: ResourceStatus): number {
    const now = this.deps.now().getTime();
    let due = this.deps.redispatchAfterMs;
    for (const record of Object.values(status.steps)) {
      if (record.state !== "pending") continue;
      const left = Date.parse(record.dispatchedAt) + this.deps.redispatchAfterMs - now;
      due = Math.min(due, left);
    }
    return Math.max(1_000, due + 100);
  }

  /** Writes status when it changed; returns when to look again. */
  async #write(
    tx: Tx,
    resource: Resource,
    status: ResourceStatus,
    summary: Summary,
    observedGeneration: number | undefined,
    requeueAfterMs?: number,
  ): Promise<ReconcileResult | undefined> {
    const next: ResourceStatus = {
      ...status,
      conditions: conditionsFor(summary, status.conditions, resource.generation, this.deps.now()),
    };
    const observed = observedGeneration ?? resource.observedGeneration;
    if (!sameStatus(next, resource.status) || observed !== resource.observedGeneration) {
      await this.deps.services.inventory.updateResourceStatus(
        tx,
        resource.id,
        next,
        observed,
        resource.version,
      );
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }
}

/** For tests that build many registries in one process. */
export function resetReconcilerMetrics(): void {
  fencingCounters = new WeakMap();
}
