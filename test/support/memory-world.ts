// An in-memory world behind the reconcile ports (controllers/common/ports.ts): the unit tests of
// the tenant-resource reconcilers run on it, without PostgreSQL. It passes the same contract
// suite (reconcile-contract.ts) as the PostgreSQL adapter, so what a reconciler test shows holds
// against the system of record too.
//
// It keeps to what the ports promise: resources with versions, VLANs and prefixes carved from
// network pools, servers by machine class, capacity per datacenter, the outbox and what became of
// its commands, tasks with their state machine and history, and shard fences. A unit of work is a
// copy of the world that replaces it when the unit's function resolves; units run one at a time.
// Between units a test plays everybody else: the API (request, change, delete, cancel), the
// domain workers (complete, deadLetter), the operator (replay, discard) and the other replicas
// (takeOver).
import type {
  Command,
  HeldServer,
  Holdings,
  Need,
  Outcome,
  Owner,
  ReconcilePorts,
  ReconcilerDeps,
  StatusWrite,
  Unit,
} from "../../controllers/index.js";
import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import {
  CapacityExhaustedError,
  InUseError,
  isTerminal,
  nextTaskState,
  NotFoundError,
  PoolExhaustedError,
  type TaskVerb,
} from "../../src/kernel/index.js";
import { type LeaseGrant, shardOf } from "../../src/reconcile/index.js";

/** A replayed dead letter points to the command that replaced it; chains are followed this far. */
const MAX_REPLAY_HOPS = 10;

/** A task's history entry. */
export interface TaskEventRow {
  readonly verb: TaskVerb;
  readonly actor: string;
  readonly message: string;
}

/** A dead letter, as far as the ports see one. */
export interface DeadLetterRow {
  readonly id: string;
  readonly messageId: string;
  readonly reason: string;
  state: "open" | "replayed" | "discarded";
  replayMessageId: string | null;
}

interface VlanRow {
  readonly networkPool: string;
  readonly datacenterId: string;
  readonly vlanId: number;
  owner: Owner | null;
}

/** An IPv4 block of a pool prefix (`root`): free, or held by its owner. */
interface BlockRow {
  readonly networkPool: string;
  readonly root: string;
  readonly network: number;
  readonly length: number;
  owner: Owner | null;
}

interface ServerRow {
  readonly id: string;
  readonly name: string;
  readonly datacenterId: string;
  readonly machineClass: string;
  owner: Owner | null;
}

interface PoolRow {
  readonly name: string;
  readonly datacenterId: string;
  readonly isDefault: boolean;
  stalled: { reason: string; message: string } | null;
}

interface CapacityRow {
  total: number;
  /** What committed reservations use; reservations count here at commit, as in PostgreSQL. */
  used: number;
}

interface ReservationRow {
  readonly owner: Owner;
  readonly datacenterId: string;
  readonly resource: string;
  readonly amount: number;
}

interface OutboxRow {
  readonly command: Command;
  published: boolean;
  lastError: string | null;
}

interface State {
  datacenters: Set<string>;
  pools: Map<string, PoolRow>;
  vlans: VlanRow[];
  blocks: BlockRow[];
  servers: ServerRow[];
  capacity: Map<string, CapacityRow>;
  reservations: ReservationRow[];
  resources: Map<string, Resource>;
  tasks: Map<string, Task>;
  history: Map<string, TaskEventRow[]>;
  /** Commands not done yet, by id. */
  outbox: Map<string, OutboxRow>;
  /** Every command sent, in order (a re-dispatch again, with `again`). */
  sent: Command[];
  /** The result of every command a worker did. */
  /** Commands handled: their result, or null when skipped. */
  inbox: Map<string, Record<string, unknown> | null>;
  deadLetters: DeadLetterRow[];
}

/** Where a test makes a port call fail. */
export type FaultOp =
  | "lock"
  | "writeStatus"
  | "remove"
  | "reserveVlan"
  | "reservePrefix"
  | "reserveServers"
  | "reserveCapacity"
  | "releaseAll"
  | "send";

class MemoryUnit {
  open = true;
  /** The shards `fences.hold` granted this unit; undefined while it holds no fence. */
  held: ReadonlySet<number> | undefined;
  constructor(public state: State) {}
}

/** Options of {@link MemoryWorld}. */
export interface MemoryWorldOptions {
  /** The shard count: a fenced unit may write only for resources of the shards it holds. */
  readonly shards?: number;
  /** The time the world starts at; {@link MemoryWorld.advance} moves it. */
  readonly start?: Date;
}

/** What a request through the API leaves: the resource and the task that follows it. */
export interface Change {
  readonly resource: Resource;
  readonly task: Task;
}

const ZERO_UUID = "00000000-0000-4000-8000-";

/** An in-memory implementation of every reconcile port, and the test's hands on its world. */
export class MemoryWorld {
  readonly shards: number;
  /** Commits made by units of work. */
  commits = 0;
  #now: Date;
  #state: State = emptyState();
  #sequence = 0;
  #tail: Promise<void> = Promise.resolve();
  #openUnits = 0;
  readonly #leases = new Map<number, { holder: string | null; token: number }>();
  readonly #faults: { op: FaultOp; id: string; error: Error }[] = [];
  readonly ports: ReconcilePorts;

  constructor(options: MemoryWorldOptions = {}) {
    this.shards = options.shards ?? 4;
    this.#now = options.start ?? new Date("2026-01-01T00:00:00.000Z");
    this.ports = this.#ports();
  }

  // ------------------------------------------------------------------ time, ids, shards

  /** The world's clock: give `() => world.now` to a reconciler as its `now`. */
  get now(): Date {
    return new Date(this.#now);
  }

  /** Lets `ms` pass. */
  advance(ms: number): void {
    this.#now = new Date(this.#now.getTime() + ms);
  }

  /** A new id: a UUID whose shard is its sequence number modulo the shard count. */
  newId(): string {
    this.#sequence++;
    return `${ZERO_UUID}${this.#sequence.toString(16).padStart(12, "0")}`;
  }

  /** The shard of a resource id, as the reconcilers compute it. */
  shardOf(id: string): number {
    return shardOf(id, this.shards);
  }

  // ------------------------------------------------------------------ shard leases

  /** Grants `shard` to `holder` (a takeover when another holds it): a new fencing token. */
  grant(shard: number, holder: string): LeaseGrant {
    const lease = this.#leases.get(shard) ?? { holder: null, token: 0 };
    lease.holder = holder;
    lease.token += 1;
    this.#leases.set(shard, lease);
    return { shard, token: lease.token };
  }

  /** The lease of `shard` expires: nobody holds it. */
  expire(shard: number): void {
    const lease = this.#leases.get(shard);
    if (lease) lease.holder = null;
  }

  /**
   * Reconciler dependencies on this world: every shard granted to `holder`, the world's clock.
   * `grants` is the map the reconciler asks (a test may keep a stale grant in it).
   */
  deps(
    options: { holder?: string; redispatchAfterMs?: number } = {},
  ): ReconcilerDeps & { grants: Map<number, LeaseGrant> } {
    const holder = options.holder ?? "replica-1";
    const grants = new Map<number, LeaseGrant>();
    for (let shard = 0; shard < this.shards; shard++) grants.set(shard, this.grant(shard, holder));
    return {
      ports: this.ports,
      holder,
      shards: this.shards,
      grant: (shard) => grants.get(shard),
      now: () => this.now,
      redispatchAfterMs: options.redispatchAfterMs ?? 60_000,
      grants,
    };
  }

  // ------------------------------------------------------------------ faults

  /** Makes calls of `op` that concern `id` (a resource, an owner, a command) throw `error`. */
  inject(op: FaultOp, id: string, error: Error): void {
    this.#faults.push({ op, id, error });
  }

  /** Makes every port call work again. */
  clearFaults(): void {
    this.#faults.length = 0;
    this.down = false;
  }

  /** The store itself is unreachable: every unit fails, and `outage` says so. */
  down = false;

  /** Units begun (attempted), committed or not. */
  unitsBegun = 0;

  #fault(op: FaultOp, ids: readonly string[]): void {
    const fault = this.#faults.find((f) => f.op === op && ids.includes(f.id));
    if (fault) throw fault.error;
  }

  // ------------------------------------------------------------------ the platform's inventory

  /** A datacenter, with finite capacities (resource → total). */
  addDatacenter(name: string, options: { capacity?: Record<string, number> } = {}): void {
    const s = this.#seeding();
    s.datacenters.add(name);
    for (const [resource, total] of Object.entries(options.capacity ?? {}))
      this.setCapacity(name, resource, total);
  }

  /** Sets a capacity's total. @throws {InUseError} below what is reserved. */
  setCapacity(datacenterId: string, resource: string, total: number): void {
    const s = this.#seeding();
    const row = s.capacity.get(`${datacenterId}/${resource}`);
    if (row && row.used > total)
      throw new InUseError("capacity", `${resource} of ${datacenterId}`, ["reservations"]);
    s.capacity.set(`${datacenterId}/${resource}`, { total, used: row?.used ?? 0 });
  }

  /** A network pool of VLAN ranges and IPv4 prefixes. @throws {NotFoundError} for no datacenter. */
  addNetworkPool(input: {
    name: string;
    datacenterId: string;
    isDefault?: boolean;
    vlans?: readonly { first: number; last: number }[];
    prefixes?: readonly string[];
  }): void {
    const s = this.#seeding();
    if (!s.datacenters.has(input.datacenterId))
      throw new NotFoundError("Datacenter", input.datacenterId);
    s.pools.set(input.name, {
      name: input.name,
      datacenterId: input.datacenterId,
      isDefault: input.isDefault ?? false,
      stalled: null,
    });
    for (const range of input.vlans ?? [])
      for (let vlanId = range.first; vlanId <= range.last; vlanId++)
        s.vlans.push({
          networkPool: input.name,
          datacenterId: input.datacenterId,
          vlanId,
          owner: null,
        });
    for (const text of input.prefixes ?? []) {
      const { network, length } = parseIpv4(text);
      s.blocks.push({
        networkPool: input.name,
        root: formatIpv4(network, length),
        network,
        length,
        owner: null,
      });
    }
  }

  /** The platform controller refused the pool's last change: it is Stalled. */
  stallPool(name: string, reason: string, message: string): void {
    const pool = this.#seeding().pools.get(name);
    if (!pool) throw new NotFoundError("NetworkPool", name);
    pool.stalled = { reason, message };
  }

  /** Adds servers of a machine class to a datacenter; returns their names. */
  addServers(input: {
    datacenterId: string;
    machineClass: string;
    count: number;
    namePrefix?: string;
  }): string[] {
    const s = this.#seeding();
    const prefix = input.namePrefix ?? `${input.datacenterId}-${input.machineClass}`;
    const names: string[] = [];
    for (let i = 0; i < input.count; i++) {
      const name = `${prefix}-${String(i).padStart(3, "0")}`;
      s.servers.push({
        id: this.newId(),
        name,
        datacenterId: input.datacenterId,
        machineClass: input.machineClass,
        owner: null,
      });
      names.push(name);
    }
    return names;
  }

  /** What an owner holds now. */
  holdings(ownerId: string): Holdings {
    return holdingsOf(this.#state, ownerId);
  }

  /** How much of a datacenter's capacity is used (committed reservations). */
  capacityUsed(datacenterId: string, resource: string): number {
    return this.#state.capacity.get(`${datacenterId}/${resource}`)?.used ?? 0;
  }

  // ------------------------------------------------------------------ the API's writes

  /** Records a resource as the API does: generation 1, nothing observed, no status. */
  createResource(input: {
    kind: ResourceKind;
    spec: Record<string, unknown>;
    datacenterId?: string;
    name?: string;
  }): Resource {
    const s = this.#seeding();
    const id = this.newId();
    const resource: Resource = {
      id,
      kind: input.kind,
      tenantId: `${ZERO_UUID}00000000aaaa`,
      projectId: `${ZERO_UUID}00000000bbbb`,
      environmentId: `${ZERO_UUID}00000000cccc`,
      datacenterId: input.datacenterId ?? "dc1",
      name: input.name ?? `${input.kind}-${this.#sequence}`,
      labels: {},
      spec: structuredClone(input.spec),
      status: {},
      generation: 1,
      observedGeneration: 0,
      deletionRequestedAt: null,
      version: 1,
      createdAt: this.now,
      updatedAt: this.now,
    };
    s.resources.set(id, resource);
    return structuredClone(resource);
  }

  /** A resource and its `<kind>.create` task, as a tenant's request leaves them. */
  request(
    kind: ResourceKind,
    spec: Record<string, unknown>,
    options: { datacenterId?: string; name?: string } = {},
  ): Change {
    const resource = this.createResource({ kind, spec, ...options });
    return { resource, task: this.createTask(resource, `${kind}.create`) };
  }

  /** A new spec (the generation moves) and its `<kind>.update` task. */
  change(id: string, spec: Record<string, unknown>): Change {
    const r = this.#resourceRow(id);
    if (r.deletionRequestedAt) throw new InUseError("resource", id, ["its own deletion"]);
    Object.assign(r, {
      spec: structuredClone(spec),
      generation: r.generation + 1,
      version: r.version + 1,
      updatedAt: this.now,
    });
    const resource = structuredClone(r);
    return { resource, task: this.createTask(resource, `${resource.kind}.update`) };
  }

  /** Asks for deletion (the generation moves, as in PostgreSQL) and its `<kind>.delete` task. */
  requestDeletion(id: string): Change {
    const r = this.#resourceRow(id);
    Object.assign(r, {
      deletionRequestedAt: r.deletionRequestedAt ?? this.now,
      generation: r.generation + 1,
      version: r.version + 1,
      updatedAt: this.now,
    });
    const resource = structuredClone(r);
    return { resource, task: this.createTask(resource, `${resource.kind}.delete`) };
  }

  /** The resource as stored now; undefined once removed. */
  resource(id: string): Resource | undefined {
    const r = this.#state.resources.get(id);
    return r ? structuredClone(r) : undefined;
  }

  #resourceRow(id: string): Resource {
    const r = this.#seeding().resources.get(id);
    if (!r) throw new NotFoundError("resource", id);
    return r;
  }

  // ------------------------------------------------------------------ tasks

  /** A task for a resource's current generation (or `generation`), `created`. */
  createTask(
    resource: Pick<
      Resource,
      "id" | "kind" | "generation" | "tenantId" | "projectId" | "environmentId" | "datacenterId"
    >,
    operation: string,
    options: { generation?: number; actor?: string } = {},
  ): Task {
    const s = this.#seeding();
    const id = this.newId();
    const actor = options.actor ?? "operator:test";
    const task: Task = {
      id,
      tenantId: resource.tenantId,
      projectId: resource.projectId,
      environmentId: resource.environmentId,
      datacenterId: resource.datacenterId,
      operation,
      resourceKind: resource.kind,
      resourceId: resource.id,
      resourceGeneration: options.generation ?? resource.generation,
      state: "created",
      progressPercent: 0,
      progressMessage: "",
      reason: "",
      actor,
      correlationId: `corr-${id.slice(-6)}`,
      traceparent: null,
      finishedAt: null,
      version: 1,
      createdAt: this.now,
      updatedAt: this.now,
    };
    s.tasks.set(id, task);
    s.history.set(id, [{ verb: "created", actor, message: "" }]);
    return structuredClone(task);
  }

  /** Moves a task as someone else does (a worker starts it, a tenant cancels it). */
  transition(taskId: string, verb: TaskVerb, message = "", actor = "operator:test"): Task {
    const s = this.#seeding();
    if (!moveTask(s, taskId, verb, message, actor, this.now)) {
      const state = s.tasks.get(taskId)?.state ?? "missing";
      throw new Error(`task ${taskId} cannot take ${verb} in state ${state}`);
    }
    return this.task(taskId);
  }

  /** A task as stored now. @throws {NotFoundError} */
  task(id: string): Task {
    const task = this.#state.tasks.get(id);
    if (!task) throw new NotFoundError("task", id);
    return structuredClone(task);
  }

  /** A task's history, oldest first. */
  history(id: string): TaskEventRow[] {
    return structuredClone(this.#state.history.get(id) ?? []);
  }

  // ------------------------------------------------------------------ commands and what became of them

  /** Every command sent through committed units, in order. */
  get sent(): readonly Command[] {
    return this.#state.sent;
  }

  /** The commands sent for a resource (`resource_id` of their data), in order. */
  commandsFor(resourceId: string): Command[] {
    return this.#state.sent.filter((c) => dataOf(c).resource_id === resourceId);
  }

  /** The last command sent for a resource. */
  lastCommand(resourceId: string): Command {
    const command = this.commandsFor(resourceId).at(-1);
    if (!command) throw new Error(`no command was sent for ${resourceId}`);
    return command;
  }

  /**
   * The commands of a resource nobody answered yet (neither done nor dead-lettered), each once,
   * in the order first sent.
   */
  unanswered(resourceId: string): Command[] {
    const s = this.#state;
    const seen = new Set<string>();
    return this.commandsFor(resourceId).filter((c) => {
      if (seen.has(c.id)) return false;
      seen.add(c.id);
      return !s.inbox.has(c.id) && !s.deadLetters.some((d) => d.messageId === c.id);
    });
  }

  /** A worker did the command: its outcome is `result` (the data of its event). */
  complete(commandId: string, result: Record<string, unknown> = {}): void {
    const s = this.#seeding();
    s.inbox.set(commandId, structuredClone(result));
    s.outbox.delete(commandId);
  }

  /** A worker skipped the command (its task had ended): handled, with no outcome. */
  skip(commandId: string): void {
    const s = this.#seeding();
    s.inbox.set(commandId, null);
    s.outbox.delete(commandId);
  }

  /** The command could not be done: a dead letter with `reason`; returns its id. */
  deadLetter(commandId: string, reason: string): string {
    const s = this.#seeding();
    const open = s.deadLetters.find((d) => d.messageId === commandId && d.state === "open");
    if (open) return open.id;
    const id = this.newId();
    s.deadLetters.push({ id, messageId: commandId, reason, state: "open", replayMessageId: null });
    s.outbox.delete(commandId);
    return id;
  }

  /**
   * An operator replays a dead letter: its command is sent again under a new id (returned),
   * which the resource's outcome follows from now on, and its task, if failed, is `queued` again.
   */
  replay(deadLetterId: string, options: { newCommandId?: string; actor?: string } = {}): string {
    const s = this.#seeding();
    const letter = s.deadLetters.find((d) => d.id === deadLetterId);
    if (!letter || letter.state !== "open")
      throw new Error(`dead letter ${deadLetterId} is not open`);
    const newCommandId = options.newCommandId ?? this.newId();
    letter.state = "replayed";
    letter.replayMessageId = newCommandId;
    const original = s.sent.find((c) => c.id === letter.messageId);
    if (!original) return newCommandId;
    const command: Command = {
      ...structuredClone(original),
      id: newCommandId,
      envelope: { ...structuredClone(original.envelope), id: newCommandId },
      again: false,
    };
    s.sent.push(command);
    s.outbox.set(newCommandId, { command, published: true, lastError: null });
    const task = s.tasks.get(String(dataOf(original).task_id));
    if (task?.state === "failed") {
      Object.assign(task, {
        state: "queued",
        finishedAt: null,
        progressPercent: 0,
        progressMessage: "",
        reason: "",
        version: task.version + 1,
        updatedAt: this.now,
      });
      s.history
        .get(task.id)
        ?.push({ verb: "queued", actor: options.actor ?? "operator:test", message: "replay" });
    }
    return newCommandId;
  }

  /** An operator discards a dead letter: the command stays failed. */
  discard(deadLetterId: string): void {
    const letter = this.#seeding().deadLetters.find((d) => d.id === deadLetterId);
    if (!letter || letter.state !== "open")
      throw new Error(`dead letter ${deadLetterId} is not open`);
    letter.state = "discarded";
  }

  /** The dead letters of the world, oldest first. */
  get deadLetters(): readonly DeadLetterRow[] {
    return this.#state.deadLetters;
  }

  /** The relay could not publish the command (its site is unreachable): it waits, with `error`. */
  failDelivery(commandId: string, error: string): void {
    const row = this.#seeding().outbox.get(commandId);
    if (!row) throw new Error(`command ${commandId} is not in the outbox`);
    row.published = false;
    row.lastError = error;
  }

  // ------------------------------------------------------------------ units of work

  /** The state a port call works on: the unit's own copy. */
  #open(unit: Unit): MemoryUnit {
    const u = unit as unknown as MemoryUnit;
    if (!(u instanceof MemoryUnit)) throw new Error("not a unit of this world");
    if (!u.open) throw new Error("a unit of work used after it ended");
    return u;
  }

  /** The committed state, for a test's own writes: only between units. */
  #seeding(): State {
    if (this.#openUnits > 0) throw new Error("the world is changed by a test while a unit runs");
    return this.#state;
  }

  async #exclusive(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before = this.#tail;
    this.#tail = before.then(() => mine);
    await before;
    return release;
  }

  /** A fenced unit writes only for resources of the shards it holds. */
  #fenced(u: MemoryUnit, resourceIds: readonly string[]): void {
    if (!u.held) return;
    for (const id of resourceIds)
      if (!u.held.has(this.shardOf(id)))
        throw new Error(`write for ${id} (shard ${this.shardOf(id)}) under no fence of its shard`);
  }

  // ------------------------------------------------------------------ the ports

  #ports(): ReconcilePorts {
    const open = (unit: Unit) => this.#open(unit);
    return {
      units: {
        run: async <T>(fn: (unit: Unit) => Promise<T>): Promise<T> => {
          this.unitsBegun++;
          if (this.down)
            throw Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" });
          const release = await this.#exclusive();
          const unit = new MemoryUnit(structuredClone(this.#state));
          this.#openUnits++;
          try {
            const result = await fn(unit as unknown as Unit);
            settleCapacity(unit.state);
            this.#state = unit.state;
            this.commits++;
            return result;
          } finally {
            unit.open = false;
            this.#openUnits--;
            release();
          }
        },
        outage: async () => this.down,
        // At once, as PostgreSQL does: a reconciler must not count on their order.
        together: async <T extends readonly unknown[]>(
          unit: Unit,
          work: { readonly [K in keyof T]: () => Promise<T[K]> },
        ): Promise<T> => {
          open(unit);
          return (await Promise.all(work.map((w) => w()))) as unknown as T;
        },
        savepoint: async <T>(unit: Unit, fn: (unit: Unit) => Promise<T>): Promise<T> => {
          const u = open(unit);
          const before = structuredClone(u.state);
          const held = u.held;
          try {
            return await fn(unit);
          } catch (err) {
            u.state = before;
            u.held = held;
            throw err;
          }
        },
      },

      fences: {
        hold: async (unit, grants, holder) => {
          const u = open(unit);
          const held = new Set<number>();
          for (const g of grants) {
            const lease = this.#leases.get(g.shard);
            if (lease?.holder === holder && lease.token === g.token) held.add(g.shard);
          }
          u.held = held;
          return new Set(held);
        },
      },

      resources: {
        lock: async (unit, ids) => {
          const { state } = open(unit);
          this.#fault("lock", ids);
          return [...new Set(ids)]
            .flatMap((id) => {
              const r = state.resources.get(id);
              return r ? [structuredClone(r)] : [];
            })
            .sort((a, b) => compare(a.id, b.id));
        },
        writeStatus: async (unit, writes: readonly StatusWrite[]) => {
          const u = open(unit);
          this.#fault(
            "writeStatus",
            writes.map((w) => w.id),
          );
          this.#fenced(
            u,
            writes.map((w) => w.id),
          );
          const moved = new Set<string>();
          for (const w of writes) {
            const r = u.state.resources.get(w.id);
            if (!r || r.version !== w.version) {
              moved.add(w.id);
              continue;
            }
            Object.assign(r, {
              // Stored as JSON, as PostgreSQL stores it.
              status: JSON.parse(JSON.stringify(w.status)) as Record<string, unknown>,
              observedGeneration: w.observedGeneration,
              version: r.version + 1,
              updatedAt: this.now,
            });
          }
          return moved;
        },
        remove: async (unit, ids) => {
          const u = open(unit);
          this.#fault("remove", ids);
          this.#fenced(u, ids);
          for (const id of ids) {
            const held = holdingsOf(u.state, id);
            if (!emptyHoldings(held)) throw new InUseError("resource", id, describe(held));
            if (u.state.resources.get(id)?.deletionRequestedAt) u.state.resources.delete(id);
          }
        },
      },

      allocations: {
        holdings: async (unit, ownerIds) => {
          const { state } = open(unit);
          return new Map(ownerIds.map((id) => [id, holdingsOf(state, id)]));
        },
        // One reservation after the other, owner by owner; an owner whose need a pool cannot
        // meet keeps nothing of this call.
        reserveMany: async (unit, needs) => {
          const allocations = this.ports.allocations;
          const { state } = open(unit);
          const byOwner = new Map<string, Need[]>();
          for (const need of needs)
            byOwner.set(need.owner.id, [...(byOwner.get(need.owner.id) ?? []), need]);
          for (const [ownerId, list] of byOwner) {
            const before = holdingsOf(state, ownerId);
            try {
              for (const need of list) {
                if (need.kind === "vlan")
                  await allocations.reserveVlan(unit, {
                    networkPool: need.networkPool,
                    owner: need.owner,
                  });
                else
                  await allocations.reservePrefix(unit, {
                    networkPool: need.networkPool,
                    prefixLength: need.prefixLength,
                    owner: need.owner,
                  });
              }
            } catch (err) {
              if (!(err instanceof PoolExhaustedError)) throw err;
              for (const v of state.vlans)
                if (
                  v.owner?.id === ownerId &&
                  !before.vlans.some(
                    (b) => b.vlanId === v.vlanId && b.networkPool === v.networkPool,
                  )
                )
                  v.owner = null;
              for (const b of state.blocks)
                if (
                  b.owner?.id === ownerId &&
                  !before.prefixes.some((p) => p.prefix === formatIpv4(b.network, b.length))
                )
                  b.owner = null;
            }
          }
        },
        defaultNetworkPool: async (unit, datacenterId) => {
          const { state } = open(unit);
          const pool = [...state.pools.values()]
            .filter((p) => p.datacenterId === datacenterId && p.isDefault)
            .sort((a, b) => compare(a.name, b.name))[0];
          if (!pool) throw new NotFoundError("default NetworkPool of datacenter", datacenterId);
          return pool.name;
        },
        reserveVlan: async (unit, { networkPool, owner }) => {
          const u = open(unit);
          this.#fault("reserveVlan", [owner.id]);
          this.#fenced(u, [owner.id]);
          const inPool = u.state.vlans
            .filter((v) => v.networkPool === networkPool)
            .sort((a, b) => a.vlanId - b.vlanId);
          const held = inPool.find((v) => v.owner?.id === owner.id);
          if (held) return held.vlanId;
          const free = inPool.find((v) => v.owner === null);
          if (!free) throw new PoolExhaustedError("vlan", networkPool, "no free VLAN id");
          free.owner = { kind: owner.kind, id: owner.id };
          return free.vlanId;
        },
        reservePrefix: async (unit, { networkPool, prefixLength, owner }) => {
          const u = open(unit);
          this.#fault("reservePrefix", [owner.id]);
          this.#fenced(u, [owner.id]);
          const blocks = u.state.blocks;
          const held = blocks.find(
            (b) =>
              b.networkPool === networkPool &&
              b.owner?.id === owner.id &&
              b.length === prefixLength,
          );
          if (held) return formatIpv4(held.network, held.length);
          // Best fit (the smallest free block large enough), then the lowest address.
          const block = blocks
            .filter((b) => b.networkPool === networkPool && !b.owner && b.length <= prefixLength)
            .sort((a, b) => b.length - a.length || a.network - b.network)[0];
          if (!block)
            throw new PoolExhaustedError(
              "prefix",
              networkPool,
              `no free IPv4 block of /${prefixLength} or larger`,
            );
          // Split: keep the low half each time, leave the high halves free.
          blocks.splice(blocks.indexOf(block), 1);
          let length = block.length;
          while (length < prefixLength) {
            length++;
            blocks.push({
              ...block,
              network: block.network + 2 ** (32 - length),
              length,
              owner: null,
            });
          }
          blocks.push({ ...block, length, owner: { kind: owner.kind, id: owner.id } });
          return formatIpv4(block.network, length);
        },
        reserveServers: async (unit, { datacenterId, machineClass, count, owner }) => {
          const u = open(unit);
          this.#fault("reserveServers", [owner.id]);
          this.#fenced(u, [owner.id]);
          const byName = (a: ServerRow, b: ServerRow) => compare(a.name, b.name);
          const mine = () =>
            u.state.servers
              .filter((v) => v.owner?.id === owner.id && v.machineClass === machineClass)
              .sort(byName);
          const missing = count - mine().length;
          if (missing > 0) {
            const free = u.state.servers
              .filter(
                (v) =>
                  v.owner === null &&
                  v.datacenterId === datacenterId &&
                  v.machineClass === machineClass,
              )
              .sort(byName);
            if (free.length < missing)
              throw new PoolExhaustedError(
                "server",
                `${machineClass} in ${datacenterId}`,
                `${missing} free ${machineClass} servers needed, ${free.length} available`,
              );
            for (const v of free.slice(0, missing)) v.owner = { kind: owner.kind, id: owner.id };
          }
          return mine().map(heldServer);
        },
        reserveCapacity: async (unit, { datacenterId, resource, amount, owner }) => {
          const u = open(unit);
          this.#fault("reserveCapacity", [owner.id]);
          this.#fenced(u, [owner.id]);
          const reservations = u.state.reservations;
          if (
            reservations.some(
              (r) =>
                r.owner.id === owner.id &&
                r.datacenterId === datacenterId &&
                r.resource === resource,
            )
          )
            return;
          // What committed reservations use, as PostgreSQL's unlocked read sees it; a unit that
          // reserves more than fits together is refused at commit (settleCapacity).
          const row = u.state.capacity.get(`${datacenterId}/${resource}`);
          const available = row ? row.total - row.used : 0;
          if (available < amount)
            throw new CapacityExhaustedError(datacenterId, resource, amount, available);
          reservations.push({
            owner: { kind: owner.kind, id: owner.id },
            datacenterId,
            resource,
            amount,
          });
        },
        releaseAll: async (unit, owner) => {
          const u = open(unit);
          this.#fault("releaseAll", [owner.id]);
          this.#fenced(u, [owner.id]);
          const s = u.state;
          const released = holdingsOf(s, owner.id);
          for (const v of s.vlans) if (v.owner?.id === owner.id) v.owner = null;
          for (const v of s.servers) if (v.owner?.id === owner.id) v.owner = null;
          freeBlocks(s, (b) => b.owner?.id === owner.id);
          s.reservations = s.reservations.filter((r) => r.owner.id !== owner.id);
          return released;
        },
        releaseVlansExcept: async (unit, owner, networkPool) => {
          const u = open(unit);
          this.#fenced(u, [owner.id]);
          for (const v of u.state.vlans)
            if (v.owner?.id === owner.id && v.networkPool !== networkPool) v.owner = null;
        },
        releasePrefixesExcept: async (unit, owner, keep) => {
          const u = open(unit);
          this.#fenced(u, [owner.id]);
          const kept = parseIpv4(keep);
          freeBlocks(
            u.state,
            (b) =>
              b.owner?.id === owner.id && !(b.network === kept.network && b.length === kept.length),
          );
        },
        unusablePool: async (unit, pool, datacenterId) => {
          const { state } = open(unit);
          const row = state.pools.get(pool);
          if (row?.stalled)
            return `network pool "${pool}" is Stalled (${row.stalled.reason}): ${row.stalled.message}`;
          const pools = [...state.pools.values()]
            .filter((p) => p.datacenterId === datacenterId)
            .map((p) => p.name)
            .sort(compare);
          if (!pools.includes(pool))
            return `network pool "${pool}" does not exist in datacenter "${datacenterId}" (it has: ${pools.join(", ") || "none"}); change the spec to name one that does`;
          return undefined;
        },
      },

      commands: {
        send: async (unit, commands) => {
          const u = open(unit);
          const resourceIds = commands.map((c) => String(dataOf(c).resource_id));
          this.#fault("send", resourceIds);
          this.#fenced(u, resourceIds);
          for (const c of commands) {
            const row = u.state.outbox.get(c.id);
            // A new command's id is its outbox row's key: a second one is refused (PostgreSQL:
            // a unique violation). Sent again, a row waiting to be published stays as it is.
            if (row && !c.again) throw new Error(`command ${c.id} is already in the outbox`);
            if (!row)
              u.state.outbox.set(c.id, {
                command: structuredClone(c),
                published: true,
                lastError: null,
              });
            u.state.sent.push(structuredClone(c));
          }
        },
        outcomes: async (unit, commands) => {
          const { state } = open(unit);
          const answer = new Map<string, Outcome>();
          for (const c of commands) {
            let id = c.id;
            let outcome: Outcome = { state: "pending" };
            for (let hop = 0; hop < MAX_REPLAY_HOPS; hop++) {
              if (state.inbox.has(id)) {
                const result = state.inbox.get(id);
                outcome = result
                  ? { state: "done", result: structuredClone(result) }
                  : { state: "skipped" };
                break;
              }
              const letter = state.deadLetters.filter((d) => d.messageId === id).at(-1);
              if (!letter) break;
              if (letter.state !== "replayed") {
                outcome = { state: "failed", reason: letter.reason, deadLetterId: letter.id };
                break;
              }
              if (!letter.replayMessageId) break;
              id = letter.replayMessageId;
            }
            answer.set(c.id, outcome);
          }
          return answer;
        },
        undelivered: async (unit, ids) => {
          const { state } = open(unit);
          const out = new Map<string, string>();
          for (const id of ids) {
            const row = state.outbox.get(id);
            if (row && !row.published && row.lastError !== null) out.set(id, row.lastError);
          }
          return out;
        },
      },

      tasks: {
        relevant: async (unit, resources) => {
          const { state } = open(unit);
          const all = [...state.tasks.values()];
          const out = new Map<string, Task[]>();
          for (const r of resources) {
            const tasks = all
              .filter(
                (t) =>
                  t.resourceId === r.id &&
                  (!isTerminal(t.state) || t.resourceGeneration === r.generation),
              )
              .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || compare(a.id, b.id));
            if (tasks.length > 0) out.set(r.id, structuredClone(tasks));
          }
          return out;
        },
        move: async (unit, moves) => {
          const u = open(unit);
          this.#fenced(
            u,
            moves.map((m) => m.task.resourceId),
          );
          for (const m of moves)
            moveTask(u.state, m.task.id, m.verb, m.message, "sentral", this.now);
        },
        describeWait: async (unit, waits) => {
          const u = open(unit);
          for (const w of waits) {
            const task = u.state.tasks.get(w.taskId);
            if (!task || (task.state !== "created" && task.state !== "queued")) continue;
            this.#fenced(u, [task.resourceId]);
            if (task.progressMessage === w.message) continue;
            Object.assign(task, {
              progressMessage: w.message,
              version: task.version + 1,
              updatedAt: this.now,
            });
          }
        },
      },
    };
  }
}

/** The kstatus condition of a resource's status, by type. */
export function condition(
  resource: Resource | undefined,
  type: "Ready" | "Reconciling" | "Stalled",
): { status: string; reason: string; message: string; observedGeneration: number } | undefined {
  const conditions = (resource?.status.conditions ?? []) as {
    type: string;
    status: string;
    reason: string;
    message: string;
    observedGeneration: number;
  }[];
  return conditions.find((c) => c.type === type);
}

/** The data of a command's envelope. */
export function dataOf(command: Command): Record<string, unknown> {
  return (command.envelope.data ?? {}) as Record<string, unknown>;
}

function emptyState(): State {
  return {
    datacenters: new Set(),
    pools: new Map(),
    vlans: [],
    blocks: [],
    servers: [],
    capacity: new Map(),
    reservations: [],
    resources: new Map(),
    tasks: new Map(),
    history: new Map(),
    outbox: new Map(),
    sent: [],
    inbox: new Map(),
    deadLetters: [],
  };
}

/** Applies a lifecycle verb if the state machine allows it; says whether it did. */
function moveTask(
  s: State,
  id: string,
  verb: TaskVerb,
  message: string,
  actor: string,
  now: Date,
): boolean {
  const task = s.tasks.get(id);
  if (!task) return false;
  const next = nextTaskState(task.state, verb);
  if (!next) return false;
  Object.assign(task, {
    state: next,
    ...(verb === "succeeded" ? { progressPercent: 100 } : {}),
    ...(verb === "started" || verb === "progress" ? { progressMessage: message } : {}),
    ...(verb === "failed" || verb === "cancelled" ? { reason: message } : {}),
    finishedAt: isTerminal(next) ? (task.finishedAt ?? now) : null,
    version: task.version + 1,
    updatedAt: now,
  });
  s.history.get(id)?.push({ verb, actor, message });
  return true;
}

/** At commit: capacity counts the reservations; a commit that overdraws one is refused. */
function settleCapacity(s: State): void {
  const used = new Map<string, number>();
  for (const r of s.reservations) {
    const key = `${r.datacenterId}/${r.resource}`;
    used.set(key, (used.get(key) ?? 0) + r.amount);
  }
  for (const [key, row] of s.capacity) {
    const now = used.get(key) ?? 0;
    if (now > row.total) {
      const [datacenterId = "", resource = ""] = key.split("/");
      throw new CapacityExhaustedError(
        datacenterId,
        resource,
        now - row.used,
        row.total - row.used,
      );
    }
    row.used = now;
  }
  for (const key of used.keys())
    if (!s.capacity.has(key)) throw new Error(`capacity ${key} does not exist`);
}

function holdingsOf(s: State, ownerId: string): Holdings {
  return {
    vlans: s.vlans
      .filter((v) => v.owner?.id === ownerId)
      // As PostgreSQL lists them (by the id as text): a pass takes the first one's pool.
      .sort((a, b) => compare(String(a.vlanId), String(b.vlanId)))
      .map((v) => ({ vlanId: v.vlanId, networkPool: v.networkPool })),
    prefixes: s.blocks
      .filter((b) => b.owner?.id === ownerId)
      .sort((a, b) => a.network - b.network || a.length - b.length)
      .map((b) => ({ prefix: formatIpv4(b.network, b.length), networkPool: b.networkPool })),
    servers: s.servers
      .filter((v) => v.owner?.id === ownerId)
      .sort((a, b) => compare(a.name, b.name))
      .map(heldServer),
    capacity: s.reservations
      .filter((r) => r.owner.id === ownerId)
      .map((r) => ({ resource: r.resource, amount: r.amount })),
  };
}

function emptyHoldings(h: Holdings): boolean {
  return (
    h.vlans.length === 0 &&
    h.prefixes.length === 0 &&
    h.servers.length === 0 &&
    h.capacity.length === 0
  );
}

function describe(h: Holdings): string[] {
  return [
    ...h.vlans.map((v) => `VLAN ${v.vlanId}`),
    ...h.prefixes.map((p) => `prefix ${p.prefix}`),
    ...h.servers.map((v) => `server ${v.name}`),
    ...h.capacity.map((c) => `${c.amount} ${c.resource}`),
  ];
}

const heldServer = (v: ServerRow): HeldServer => ({
  id: v.id,
  name: v.name,
  machineClass: v.machineClass,
});

/** Frees the blocks `which` selects, merging each with its free buddy up to its pool prefix. */
function freeBlocks(s: State, which: (b: BlockRow) => boolean): void {
  for (const block of s.blocks.filter(which)) {
    block.owner = null;
    let current = block;
    const rootLength = parseIpv4(current.root).length;
    while (current.length > rootLength) {
      const size = 2 ** (32 - current.length);
      const mateNetwork =
        current.network % (size * 2) === 0 ? current.network + size : current.network - size;
      const mate = s.blocks.find(
        (b) =>
          b.root === current.root &&
          b.owner === null &&
          b.length === current.length &&
          b.network === mateNetwork,
      );
      if (!mate) break;
      s.blocks = s.blocks.filter((b) => b !== mate && b !== current);
      const merged: BlockRow = {
        ...current,
        network: Math.min(current.network, mate.network),
        length: current.length - 1,
        owner: null,
      };
      s.blocks.push(merged);
      current = merged;
    }
  }
}

function parseIpv4(text: string): { network: number; length: number } {
  const [address = "", bits = "32"] = text.split("/");
  const octets = address.split(".").map(Number);
  const length = Number(bits);
  if (octets.length !== 4 || octets.some((o) => !(o >= 0 && o <= 255)) || !(length >= 0))
    throw new Error(`not an IPv4 prefix: ${text}`);
  const value = octets.reduce((acc, o) => acc * 256 + o, 0);
  const size = 2 ** (32 - length);
  return { network: value - (value % size), length };
}

function formatIpv4(network: number, length: number): string {
  const octets = [24, 16, 8, 0].map((shift) => Math.floor(network / 2 ** shift) % 256);
  return `${octets.join(".")}/${length}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
