// The ports of the tenant-resource reconcilers: everything a pass reads and writes goes through
// these five narrow interfaces. PostgreSQL implements them (controllers/common/postgres.ts, over
// the contexts' stores); an in-memory world implements them for unit tests
// (test/support/memory-world.ts); one contract suite (test/support/reconcile-contract.ts) runs
// against both. Every method takes the unit of work it belongs to and works on sets: a pass over
// fifty resources sends one statement per kind of write, not fifty.
import type { Need, Owner, Resource } from "../../src/contexts/inventory/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import type { TaskVerb } from "../../src/kernel/index.js";
import type { WorkerService } from "../../src/messaging/index.js";
import type { LeaseGrant } from "../../src/reconcile/index.js";

declare const unitBrand: unique symbol;

/** One transaction (PostgreSQL) or one staged set of changes (in memory); opaque to passes. */
export interface Unit {
  readonly [unitBrand]: true;
}

/** Units of work: all of a batch's writes commit together, or none does. */
export interface UnitOfWork {
  run<T>(fn: (unit: Unit) => Promise<T>): Promise<T>;
  /**
   * Whether `err`, from a unit, means the store itself is unreachable — every unit would fail
   * alike — rather than that unit's own failure.
   */
  outage(err: unknown): Promise<boolean>;
  /** Runs `fn` so that what it wrote is undone alone if it throws; the unit goes on. */
  savepoint<T>(unit: Unit, fn: (unit: Unit) => Promise<T>): Promise<T>;
  /**
   * Runs operations of one unit that do not depend on each other, and returns their results in
   * order: at once where the store can (PostgreSQL sends their statements together, each in its
   * context's role), one after the other where it cannot.
   */
  together<T extends readonly unknown[]>(
    unit: Unit,
    work: { readonly [K in keyof T]: () => Promise<T[K]> },
  ): Promise<T>;
}

/** The shard leases, as the writes of a unit are fenced by them. */
export interface FencePort {
  /**
   * Which of `grants` are still this holder's: those shards are held against a takeover until the
   * unit ends, and the unit's writes are recorded as made under them. Writes for other shards'
   * keys must not be made.
   */
  hold(unit: Unit, grants: readonly LeaseGrant[], holder: string): Promise<ReadonlySet<number>>;
}

/** A status to write, if the resource is still at `version`. */
export interface StatusWrite {
  readonly id: string;
  readonly status: Record<string, unknown>;
  readonly observedGeneration: number;
  readonly version: number;
}

/** Tenant resources: read for a pass, locked for its unit; status written back. */
export interface ResourcePort {
  /**
   * The resources of `ids` that exist, locked against other writers until the unit ends (an API
   * change waits for the pass to commit, then queues the key again).
   */
  lock(unit: Unit, ids: readonly string[]): Promise<Resource[]>;
  /** Writes statuses; returns the ids whose version had moved (nothing written for those). */
  writeStatus(unit: Unit, writes: readonly StatusWrite[]): Promise<ReadonlySet<string>>;
  /** Deletes resources whose deletion was requested and which hold nothing any more. */
  remove(unit: Unit, ids: readonly string[]): Promise<void>;
}

/** Who holds an allocation, and what it may need reserved: the inventory's own shapes. */
export type { Need, Owner };

/** A server as the inventory hands it out. */
export interface HeldServer {
  readonly id: string;
  readonly name: string;
  readonly machineClass: string;
}

/** What an owner holds. */
export interface Holdings {
  readonly vlans: readonly { readonly vlanId: number; readonly networkPool: string }[];
  readonly prefixes: readonly { readonly prefix: string; readonly networkPool: string }[];
  readonly servers: readonly HeldServer[];
  readonly capacity: readonly { readonly resource: string; readonly amount: number }[];
}

/** The scarce things resources reserve: VLANs, prefixes, servers, capacity. */
export interface AllocationPort {
  /** What each owner holds, for many owners at once. */
  holdings(unit: Unit, ownerIds: readonly string[]): Promise<ReadonlyMap<string, Holdings>>;
  /** @throws a `DV_NOT_FOUND` error when the datacenter has no default network pool. */
  defaultNetworkPool(unit: Unit, datacenterId: string): Promise<string>;
  /** @throws a `DV_POOL_EXHAUSTED` error. Returns the VLAN the owner holds there if any. */
  reserveVlan(unit: Unit, input: { networkPool: string; owner: Owner }): Promise<number>;
  /** @throws a `DV_POOL_EXHAUSTED` error. Returns the owner's prefix of that length if any. */
  reservePrefix(
    unit: Unit,
    input: { networkPool: string; prefixLength: number; owner: Owner },
  ): Promise<string>;
  /**
   * Reserves what `needs` ask for, for many owners at once and in a few statements whatever
   * their number, as {@link reserveVlan} and {@link reservePrefix} one by one would (best fit,
   * then the lowest address). A need the pool cannot meet now is left unmet, not refused: the
   * owner's own pass asks again and learns why.
   */
  reserveMany(unit: Unit, needs: readonly Need[]): Promise<void>;
  /**
   * All or nothing when called under a savepoint (the reconcilers reserve under one: a refusal
   * after some servers were taken undoes them with it). Counts what the owner holds.
   * @throws a `DV_POOL_EXHAUSTED` error.
   */
  reserveServers(
    unit: Unit,
    input: { datacenterId: string; machineClass: string; count: number; owner: Owner },
  ): Promise<HeldServer[]>;
  /** @throws a `DV_CAPACITY_EXHAUSTED` error. A second reservation changes nothing. */
  reserveCapacity(
    unit: Unit,
    input: { datacenterId: string; resource: string; amount: number; owner: Owner },
  ): Promise<void>;
  /** Releases everything the owner holds; returns it. */
  releaseAll(unit: Unit, owner: Owner): Promise<Holdings>;
  /** Releases the owner's VLANs in network pools other than `networkPool`. */
  releaseVlansExcept(unit: Unit, owner: Owner, networkPool: string): Promise<void>;
  /** Releases the owner's prefixes other than `keep`. */
  releasePrefixesExcept(unit: Unit, owner: Owner, keep: string): Promise<void>;
  /**
   * Why a network pool that looked exhausted cannot be used at all (it is Stalled, or does not
   * exist in the datacenter), if that is the case.
   */
  unusablePool(unit: Unit, pool: string, datacenterId: string): Promise<string | undefined>;
}

/** What became of a command, as the system of record holds it. */
export type Outcome =
  | { readonly state: "pending" }
  | { readonly state: "done"; readonly result: Record<string, unknown> }
  /** The worker recorded it handled without doing it (its task had ended). */
  | { readonly state: "skipped" }
  | { readonly state: "failed"; readonly reason: string; readonly deadLetterId: string };

/** A command to send through the outbox. */
export interface Command {
  readonly id: string;
  readonly subject: string;
  readonly envelope: Record<string, unknown>;
  readonly headers: Record<string, string>;
  /** Sent before (a re-dispatch of a command left unanswered): send it again if published. */
  readonly again: boolean;
}

/** Commands to the domain workers, and what became of them. */
export interface CommandPort {
  /** Queues commands to be published after commit, one statement whatever their number. */
  send(unit: Unit, commands: readonly Command[]): Promise<void>;
  /**
   * What became of each command (inbox, dead letters, replays followed): every id asked for is in
   * the answer.
   */
  outcomes(
    unit: Unit,
    commands: readonly { readonly service: WorkerService; readonly id: string }[],
  ): Promise<ReadonlyMap<string, Outcome>>;
  /** The commands among `ids` that could not be delivered yet, with the last error. */
  undelivered(unit: Unit, ids: readonly string[]): Promise<ReadonlyMap<string, string>>;
}

/** A task to move. */
export interface TaskMove {
  readonly task: Task;
  readonly verb: TaskVerb;
  readonly message: string;
}

/** The tasks of resources, and their lifecycle. */
export interface TaskPort {
  /**
   * For each resource, its tasks that are open or ask for the generation given, oldest first.
   */
  relevant(
    unit: Unit,
    resources: readonly { readonly id: string; readonly generation: number }[],
  ): Promise<ReadonlyMap<string, Task[]>>;
  /**
   * Moves tasks, in order, each emitting its event; a move the state machine forbids (the task
   * ended meanwhile) is skipped.
   */
  move(unit: Unit, moves: readonly TaskMove[]): Promise<void>;
  /** Says what tasks not started yet wait for, without a transition. */
  describeWait(unit: Unit, waits: readonly { taskId: string; message: string }[]): Promise<void>;
}

/** Everything a tenant-resource reconciler reaches the world through. */
export interface ReconcilePorts {
  readonly units: UnitOfWork;
  readonly fences: FencePort;
  readonly resources: ResourcePort;
  readonly allocations: AllocationPort;
  readonly commands: CommandPort;
  readonly tasks: TaskPort;
}
