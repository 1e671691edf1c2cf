import { Counter, type Registry } from "prom-client";
import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import { VersionConflictError } from "../../src/kernel/index.js";
import type { WorkerService } from "../../src/messaging/index.js";
import type { Logger } from "../../src/observability/index.js";
import {
  type BatchReconciler,
  keyId,
  type LeaseGrant,
  type PassSettled,
  type ReconcileResult,
  shardOf,
  TerminalError,
} from "../../src/reconcile/index.js";
import { Allocator, DEFERRED, NotHeld } from "./allocator.js";
import type { StepSpec } from "./commands.js";
import { commandsToLookUp, foldOutcomes } from "./outcomes.js";
import {
  type KindPlan,
  type KindRules,
  Pass,
  type PassContext,
  type PassOutcome,
  Stall,
} from "./pass.js";
import type { Holdings, Need, ReconcilePorts, Unit } from "./ports.js";
import { readStatus, type ResourceStatus, type Summary } from "./status.js";

/** How a reconciler reaches the world. */
export interface ReconcilerDeps {
  readonly ports: ReconcilePorts;
  readonly holder: string;
  readonly shards: number;
  grant(shard: number): LeaseGrant | undefined;
  readonly now: () => Date;
  /** A pending command not answered for this long is sent again (same id: it is de-duplicated). */
  readonly redispatchAfterMs: number;
  readonly metrics?: Registry;
}

let fencingCounters = new WeakMap<Registry, Counter<"controller">>();

const NO_HOLDINGS: Holdings = { vlans: [], prefixes: [], servers: [], capacity: [] };

/**
 * The reconciler of a tenant resource kind, over a batch of keys at a time. One unit of work per
 * batch, fenced by the leases of the shards its keys belong to: lock the resources, read what
 * their commands did, their tasks and what they hold (one statement each for the whole batch),
 * run each resource's {@link Pass}, then write every pass's commands, task moves and statuses
 * together. A batch whose unit fails is split in halves down to the key whose failure it is,
 * so its batch-mates still go through together; a pass that throws fails only its key.
 */
export abstract class ResourceReconciler implements BatchReconciler, KindRules {
  protected readonly deps: ReconcilerDeps;
  readonly #fenced: Counter<"controller"> | undefined;

  abstract readonly kind: ResourceKind;
  readonly rollBackOnFailure: boolean = false;

  constructor(deps: ReconcilerDeps) {
    this.deps = deps;
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

  abstract plan(ctx: PassContext): Promise<KindPlan>;
  abstract teardown(resource: Resource, status: ResourceStatus): readonly (readonly StepSpec[])[];
  afterReady?(
    ctx: PassContext,
    run: (phases: readonly (readonly StepSpec[])[]) => "done" | "pending",
  ): Promise<Summary | undefined>;

  async reconcile(key: string, log: Logger): Promise<ReconcileResult | undefined> {
    const settled = (await this.reconcileMany([key], log)).get(key);
    if (!settled || settled.ok) return settled?.result;
    throw settled.error;
  }

  async reconcileMany(keys: readonly string[], log: Logger): Promise<Map<string, PassSettled>> {
    const results = new Map<string, PassSettled>();
    const mine: { key: string; id: string; grant: LeaseGrant }[] = [];
    for (const key of keys) {
      const id = keyId(key);
      const grant = this.deps.grant(shardOf(id, this.deps.shards));
      // Not this replica's shard (any more): nothing to do.
      if (grant) mine.push({ key, id, grant });
      else results.set(key, { ok: true, result: undefined });
    }
    await this.#batch(mine, log, results);
    return results;
  }

  /** One unit of work for the batch; split in halves when it fails as a whole. */
  async #batch(
    items: readonly { key: string; id: string; grant: LeaseGrant }[],
    log: Logger,
    results: Map<string, PassSettled>,
  ): Promise<void> {
    if (items.length === 0) return;
    const settled = new Map<string, PassSettled>();
    try {
      await this.deps.ports.units.run((unit) => this.#passes(unit, items, log, settled));
      for (const [key, result] of settled) results.set(key, result);
    } catch (err) {
      // One key, or the database itself down (every half would fail alike): each key of the
      // batch is retried with its own backoff.
      if (items.length === 1 || (await this.deps.ports.units.outage(err))) {
        for (const item of items) results.set(item.key, { ok: false, error: err });
        return;
      }
      log.warn({ err, keys: items.length }, "a batch failed; splitting it to find the key");
      const half = Math.ceil(items.length / 2);
      await this.#batch(items.slice(0, half), log, results);
      await this.#batch(items.slice(half), log, results);
    }
  }

  async #passes(
    unit: Unit,
    items: readonly { key: string; id: string; grant: LeaseGrant }[],
    log: Logger,
    settled: Map<string, PassSettled>,
  ): Promise<void> {
    const { ports, holder, now: clock } = this.deps;
    const grants = [...new Map(items.map((i) => [i.grant.shard, i.grant])).values()];
    const held = await ports.fences.hold(unit, grants, holder);
    const live = items.filter((i) => held.has(i.grant.shard));
    for (const item of items) {
      if (held.has(item.grant.shard)) continue;
      this.#fenced?.inc({ controller: this.kind });
      log.warn(
        { key: item.key, shard: item.grant.shard, token: item.grant.token },
        "write refused: the shard's lease moved on",
      );
      settled.set(item.key, { ok: true, result: undefined });
    }
    if (live.length === 0) return;

    const resources = await ports.resources.lock(
      unit,
      live.map((i) => i.id),
    );
    const byId = new Map(resources.map((r) => [r.id, r]));
    for (const item of live)
      if (!byId.has(item.id)) settled.set(item.key, { ok: true, result: undefined }); // gone

    const statuses = new Map(resources.map((r) => [r.id, readStatus(r.status)]));
    const lookUps = [...statuses.values()].flatMap(commandsToLookUp);
    // Commands pending before their outcomes are folded in: a superset of those pending after,
    // which is all a pass asks `undelivered` about. So the four reads do not wait for each other.
    const pending = [...statuses.values()].flatMap((s) =>
      Object.values(s.steps)
        .filter((r) => r.state === "pending")
        .map((r) => r.command),
    );
    const [outcomes, tasks, holdings, undelivered] = await ports.units.together(unit, [
      () =>
        ports.commands.outcomes(
          unit,
          lookUps.map((c) => ({ service: c.service as WorkerService, id: c.id })),
        ),
      () => ports.tasks.relevant(unit, resources),
      () =>
        ports.allocations.holdings(
          unit,
          resources.map((r) => r.id),
        ),
      () => ports.commands.undelivered(unit, pending),
    ] as const);
    for (const status of statuses.values()) foldOutcomes(status, outcomes);

    const now = clock();
    const defaults = new Map<string, Promise<string>>();
    const decided: { key: string; outcome: PassOutcome }[] = [];
    const runPass = async (
      item: { key: string; id: string; grant: LeaseGrant },
      held: ReadonlyMap<string, Holdings>,
      needs: Need[] | undefined,
    ): Promise<void> => {
      const resource = byId.get(item.id);
      const status = statuses.get(item.id);
      if (!resource || !status) return;
      const owner = { kind: resource.kind, id: resource.id };
      const pass = new Pass({
        rules: this,
        resource,
        status,
        tasks: tasks.get(resource.id) ?? [],
        allocate: new Allocator(
          ports.allocations,
          unit,
          owner,
          held.get(resource.id) ?? NO_HOLDINGS,
          resource.datacenterId,
          defaults,
        ),
        grant: item.grant,
        now,
        redispatchAfterMs: this.deps.redispatchAfterMs,
        undelivered,
        planSafely: (ctx, mayDefer = true) =>
          this.#planSafely(unit, ctx, mayDefer ? needs : undefined),
        releaseAll: () => ports.allocations.releaseAll(unit, owner),
        remove: () => ports.resources.remove(unit, [resource.id]),
        log,
        logContext: { key: item.key, tenant_id: resource.tenantId },
      });
      decided.push({ key: item.key, outcome: await pass.run() });
    };

    // A pass whose plan lacks VLANs or prefixes notes them and waits: they are reserved for every
    // such pass of the batch at once, and those passes run again on what they then hold.
    const needs: Need[] = [];
    const waiting: { key: string; id: string; grant: LeaseGrant }[] = [];
    for (const item of live) {
      try {
        await runPass(item, holdings, needs);
      } catch (err) {
        if (err === DEFERRED) waiting.push(item);
        else settled.set(item.key, { ok: false, error: err });
      }
    }
    if (waiting.length > 0) {
      await ports.allocations.reserveMany(unit, needs);
      const reserved = await ports.allocations.holdings(
        unit,
        waiting.map((i) => i.id),
      );
      for (const item of waiting) {
        try {
          await runPass(item, reserved, undefined);
        } catch (err) {
          settled.set(item.key, { ok: false, error: err });
        }
      }
    }

    // Every pass's writes, one statement per kind of write.
    const decisions = decided.map((d) => d.outcome);
    // The tasks' writes in their order (a wait is described on the task as moved); the commands
    // and the statuses are other tables, written at the same time.
    const [, , moved] = await ports.units.together(unit, [
      async () => {
        await ports.tasks.move(
          unit,
          decisions.flatMap((o) => o.moves),
        );
        await ports.tasks.describeWait(
          unit,
          decisions.flatMap((o) => o.waits),
        );
      },
      () =>
        ports.commands.send(
          unit,
          decisions.flatMap((o) => o.commands),
        ),
      () =>
        ports.resources.writeStatus(
          unit,
          decisions.flatMap((o) => (o.status ? [o.status] : [])),
        ),
    ] as const);
    for (const { key, outcome } of decided) {
      const id = keyId(key);
      if (moved.has(id)) {
        const resource = byId.get(id);
        settled.set(key, {
          ok: false,
          error: new VersionConflictError("resource", id, resource?.version ?? -1, -1),
        });
      } else if (outcome.terminal !== undefined) {
        // Retrying cannot help until the spec changes; the controller learns it after commit.
        settled.set(key, { ok: false, error: new TerminalError(outcome.terminal) });
      } else {
        settled.set(key, {
          ok: true,
          result:
            outcome.requeueAfterMs === undefined
              ? undefined
              : { requeueAfterMs: outcome.requeueAfterMs },
        });
      }
    }
  }

  /**
   * The kind's plan under a savepoint; a refusal of the inventory becomes a {@link Stall}. With
   * `needs`, a plan that lacks VLANs or prefixes notes them there and throws {@link DEFERRED}:
   * the batch reserves them together and runs the pass again.
   */
  async #planSafely(unit: Unit, ctx: PassContext, needs?: Need[]): Promise<KindPlan> {
    const { ports } = this.deps;
    try {
      // What the resource holds usually answers the whole plan: then nothing is reserved and no
      // savepoint is needed.
      return await this.plan({ ...ctx, allocate: ctx.allocate.dry() });
    } catch (err) {
      if (!(err instanceof NotHeld)) throw err;
    }
    if (needs) {
      const noted: Need[] = [];
      // The plan on placeholders, to learn what it lacks. One that cannot be planned so (it lacks
      // servers or capacity too) reserves on its own, under its savepoint, as before: all of
      // what it needs or nothing.
      const complete = await this.plan({ ...ctx, allocate: ctx.allocate.recording(noted) }).then(
        () => true,
        () => false,
      );
      if (complete && noted.length > 0) {
        needs.push(...noted);
        throw DEFERRED;
      }
    }
    try {
      // A reservation that fails half-way (three of four servers) leaves nothing.
      return await ports.units.savepoint(unit, () =>
        this.plan({ ...ctx, allocate: ctx.allocate.reserving() }),
      );
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "DV_POOL_EXHAUSTED") {
        // An empty pool may be one that is gone or refused, not one that is used up: say which.
        const { resource: kind, pool } = err as { resource?: string; pool?: string };
        if ((kind === "vlan" || kind === "prefix") && pool) {
          const unusable = await ports.allocations.unusablePool(
            unit,
            pool,
            ctx.resource.datacenterId,
          );
          if (unusable) throw new Stall("PoolUnavailable", unusable, true);
        }
      }
      if (code === "DV_POOL_EXHAUSTED" || code === "DV_CAPACITY_EXHAUSTED") {
        throw new Stall("InsufficientCapacity", (err as Error).message, true);
      }
      if (code === "DV_NOT_FOUND") throw new Stall("InvalidSpec", (err as Error).message, true);
      throw err;
    }
  }
}

/** For tests that build many registries in one process. */
export function resetReconcilerMetrics(): void {
  fencingCounters = new WeakMap();
}
