import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Logger } from "../observability/index.js";
import type { Clock } from "./clock.js";
import { Controller, type Reconciler } from "./controller.js";
import { type LeaseGrant, LeaseManager, type LeasePort } from "./leases.js";
import { type Lane, WorkQueue } from "./queue.js";
import { keyId, shardOf } from "./sharding.js";

/** How long shards taken one after another are gathered before their keys are listed together. */
const ACQUIRED_LISTING_DELAY_MS = 100;

/**
 * Something that tells the manager a key changed: PostgreSQL `LISTEN`, a JetStream consumer of
 * domain events, a Kubernetes informer. A source only queues keys; every pass reads state afresh,
 * so a trigger that is lost only delays a pass until the resync.
 */
export interface Source {
  readonly name: string;
  /** Starts delivering; resolves once it listens. Returns how to stop it. */
  start(enqueue: (key: string, lane?: Lane) => void): Promise<() => Promise<void>>;
}

/** What the resync asks the system of record. */
export interface ResyncPort {
  /**
   * The keys (`<kind>:<id>`) of `shards` (of `shardCount`) that need a pass — not converged, or
   * converged but due for a look — and how many resources of those shards are converged and
   * need none.
   */
  due(
    shards: readonly number[],
    shardCount: number,
  ): Promise<{ readonly keys: readonly string[]; readonly converged: number }>;
}

/** One controller of the manager: the reconciler of the keys `<name>:<id>`. */
export interface ManagedController {
  readonly name: string;
  readonly reconciler: Reconciler;
}

/** Options of {@link Manager}. */
export interface ManagerOptions {
  /** This replica's name in the leases. */
  readonly holder: string;
  readonly datacenterId: string;
  readonly shards: number;
  readonly leases: LeasePort;
  readonly leaseTtlMs: number;
  readonly leaseRenewMs: number;
  readonly leaseRetryMs: number;
  readonly controllers: readonly ManagedController[];
  /** Passes each controller runs at once. */
  readonly concurrency: number;
  readonly sources: readonly Source[];
  readonly resync: ResyncPort;
  /** Every shard held is resynced this often, ±20 % (drawn from {@link random}). */
  readonly resyncMs: number;
  readonly clock: Clock;
  readonly random: () => number;
  readonly log: Logger;
  readonly metrics?: Registry;
}

let metricsByRegistry = new WeakMap<Registry, ManagerMetrics>();

interface ManagerMetrics {
  readonly resynced: Counter<"result">;
  readonly duration: Histogram;
  readonly managers: Set<Manager>;
}

function metricsFor(registry: Registry): ManagerMetrics {
  let m = metricsByRegistry.get(registry);
  if (m) return m;
  const managers = new Set<Manager>();
  m = {
    managers,
    resynced: new Counter({
      name: "dataverket_resync_resources_total",
      help: "Resources the resync looked at, by result: queued for a pass, or converged and confirmed without one",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: "dataverket_resync_duration_seconds",
      help: "How long the resync took to find the resources of the shards held that need a pass",
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
  };
  new Gauge({
    name: "dataverket_leases_held",
    help: "Shard leases this replica holds",
    registers: [registry],
    collect() {
      let held = 0;
      for (const manager of managers) held += manager.leases.held().length;
      this.set(held);
    },
  });
  metricsByRegistry.set(registry, m);
  return m;
}

/** For tests that build many registries in one process. */
export function resetManagerMetrics(): void {
  metricsByRegistry = new WeakMap();
}

/**
 * The reconcile engine of a replica, in the shape of controller-runtime's manager: it holds a
 * fair share of the shards by lease, runs one controller (work queue and passes) per kind, and
 * owns what queues keys — the sources and the periodic resync — gating every key by the shard
 * it belongs to. The resync does not queue every key it holds: it asks the system of record which
 * resources need a pass, and counts the converged ones as confirmed. All timing comes from the
 * injected clock and randomness.
 */
export class Manager {
  readonly #o: ManagerOptions;
  readonly #controllers = new Map<string, Controller>();
  readonly #metrics: ManagerMetrics | undefined;
  readonly leases: LeaseManager;
  readonly #acquired = new Set<number>();
  #listAcquired: unknown;
  #resyncTimer: unknown;
  #stops: (() => Promise<void>)[] = [];
  #stopped = false;

  constructor(options: ManagerOptions) {
    this.#o = options;
    this.#metrics = options.metrics ? metricsFor(options.metrics) : undefined;
    for (const { name, reconciler } of options.controllers) {
      this.#controllers.set(
        name,
        new Controller({
          name,
          reconciler,
          queue: new WorkQueue({ clock: options.clock, ratePerSecond: 5_000, burst: 10_000 }),
          concurrency: options.concurrency,
          log: options.log.child({ controller: name }),
          clock: options.clock,
          ...(options.metrics ? { metrics: options.metrics } : {}),
        }),
      );
    }
    this.leases = new LeaseManager({
      port: options.leases,
      holder: options.holder,
      datacenterId: options.datacenterId,
      shards: options.shards,
      ttlMs: options.leaseTtlMs,
      renewMs: options.leaseRenewMs,
      retryMs: options.leaseRetryMs,
      clock: options.clock,
      log: options.log.child({ component: "leases", holder: options.holder }),
      random: options.random,
      onAcquired: (grant) => this.#onAcquired(grant),
      onLost: (shard) => {
        for (const controller of this.#controllers.values())
          controller.queue.remove((key) => this.shardOf(key) === shard);
      },
    });
    this.#metrics?.managers.add(this);
  }

  get holder(): string {
    return this.#o.holder;
  }

  /** The shard of a key `<kind>:<id>`. */
  shardOf(key: string): number {
    return shardOf(keyId(key), this.#o.shards);
  }

  /** The grant of the shard `key` belongs to, while this replica holds it. */
  grant(shard: number): LeaseGrant | undefined {
    return this.leases.grant(shard);
  }

  controller(name: string): Controller {
    const controller = this.#controllers.get(name);
    if (!controller) throw new Error(`no controller ${name}`);
    return controller;
  }

  /** Queues a key (`<kind>:<id>`) if this replica holds its shard; otherwise drops it. */
  enqueue(key: string, lane: Lane = "fresh"): void {
    if (this.#stopped) return;
    const name = key.slice(0, key.indexOf(":"));
    const controller = this.#controllers.get(name);
    if (controller && this.leases.grant(this.shardOf(key)) !== undefined)
      controller.queue.add(key, lane);
  }

  /**
   * Resyncs the shards given (every shard held by default): queues the keys that need a pass in
   * the resync lane. Returns how many were queued and how many were converged.
   */
  async resync(shards?: ReadonlySet<number>): Promise<{ queued: number; converged: number }> {
    const wanted = shards
      ? [...shards].filter((s) => this.leases.grant(s) !== undefined)
      : this.leases.held().map((g) => g.shard);
    if (wanted.length === 0) return { queued: 0, converged: 0 };
    const started = this.#o.clock.now();
    const { keys, converged } = await this.#o.resync.due(
      wanted.sort((a, b) => a - b),
      this.#o.shards,
    );
    let queued = 0;
    for (const key of keys) {
      const name = key.slice(0, key.indexOf(":"));
      const controller = this.#controllers.get(name);
      // A shard lost while the query ran is no longer ours to resync.
      if (!controller || this.leases.grant(this.shardOf(key)) === undefined) continue;
      controller.queue.add(key, "resync");
      queued++;
    }
    this.#metrics?.duration.observe((this.#o.clock.now() - started) / 1000);
    this.#metrics?.resynced.inc({ result: "queued" }, queued);
    this.#metrics?.resynced.inc({ result: "converged" }, converged);
    return { queued, converged };
  }

  /** Starts the controllers, takes shards, then the sources and the periodic resync. */
  async start(): Promise<void> {
    for (const controller of this.#controllers.values()) controller.start();
    await this.leases.start();
    for (const source of this.#o.sources) {
      const stop = await source.start((key, lane) => this.enqueue(key, lane));
      this.#stops.push(stop);
    }
    this.#scheduleResync();
  }

  /**
   * Stops the sources and the resync, lets the passes in flight finish while the leases are still
   * held, then gives the leases back.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimer(this.#resyncTimer);
    this.#o.clock.clearTimer(this.#listAcquired);
    for (const stop of this.#stops.splice(0).reverse()) await stop();
    await Promise.all([...this.#controllers.values()].map((c) => c.stop()));
    await this.leases.stop();
    this.#metrics?.managers.delete(this);
  }

  /** Shards taken in one round are listed together: one query, not one per shard. */
  #onAcquired(grant: LeaseGrant): void {
    this.#acquired.add(grant.shard);
    this.#listAcquired ??= this.#o.clock.setTimer(() => {
      const shards = new Set(this.#acquired);
      this.#acquired.clear();
      this.#listAcquired = undefined;
      if (this.#stopped) return;
      void this.resync(shards).catch((err: unknown) =>
        this.#o.log.warn({ err, shards: shards.size }, "listing new shards' keys failed"),
      );
    }, ACQUIRED_LISTING_DELAY_MS);
  }

  #scheduleResync(): void {
    if (this.#stopped) return;
    const jitter = 0.8 + this.#o.random() * 0.4;
    this.#resyncTimer = this.#o.clock.setTimer(() => {
      void this.resync()
        .catch((err: unknown) => this.#o.log.warn({ err }, "resync failed"))
        .finally(() => this.#scheduleResync());
    }, this.#o.resyncMs * jitter);
  }
}
