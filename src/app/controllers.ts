import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from "@nats-io/jetstream";
import { Gauge } from "prom-client";
import {
  BucketReconciler,
  ClusterReconciler,
  NetworkReconciler,
  type ReconcilerDeps,
  type ResourceReconciler,
  ServerReconciler,
} from "../../controllers/index.js";
import type { Config } from "../config/index.js";
import { INTENT_CHANNEL, type ResourceKind } from "../contexts/inventory/index.js";
import { LeaseStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { STREAMS } from "../jetstream/index.js";
import type { Logger, Registry } from "../observability/index.js";
import {
  type Clock,
  Controller,
  keyId,
  type Lane,
  LeaseManager,
  realClock,
  shardOf,
  WorkQueue,
} from "../reconcile/index.js";
import type { Services } from "./services.js";

/** How long newly taken shards are gathered before their keys are listed together. */
const ACQUIRED_LISTING_DELAY_MS = 100;

/** The running controllers of a process. */
export interface ControlPlane {
  readonly holder: string;
  readonly leases: LeaseManager;
  /** Queues a key (`<kind>:<id>`) if this replica owns its shard. */
  enqueue(key: string, lane?: Lane): void;
  /** Queues every key of the shards held (what the periodic resync does). */
  resync(): Promise<number>;
  controller(kind: ResourceKind): Controller;
}

/** Options of {@link startControllers}. */
export interface StartControllersOptions {
  readonly services: Services;
  readonly js: JetStreamClient | undefined;
  readonly settings: Config["controller"];
  readonly datacenterId: string;
  readonly log: Logger;
  readonly metrics: Registry;
  readonly lifecycle: Lifecycle;
  readonly holder?: string;
  readonly clock?: Clock;
  /**
   * Where the lease manager renews and takes leases: a pool of its own, so renewals never queue
   * behind reconcile passes for a connection. Defaults to the services' database.
   */
  readonly leaseDb?: Database;
}

/**
 * Starts the tenant-resource controllers of a replica: a lease manager holding a fair share of
 * the shards, one controller per kind, and three triggers that only queue keys — `LISTEN
 * dv_intent` for changes of intent, the domain and dead-letter events from NATS, and a periodic
 * resync with jitter. Every pass re-reads state from PostgreSQL, so a lost trigger only delays.
 */
export async function startControllers(options: StartControllersOptions): Promise<ControlPlane> {
  const { services, settings, log, metrics, lifecycle } = options;
  const clock = options.clock ?? realClock;
  const holder = options.holder ?? newHolder();
  const leaseStore = new LeaseStore(services.db);
  // The reconcilers ask the lease manager for grants; it is built after them.
  const ref: { manager?: LeaseManager } = {};

  const deps: ReconcilerDeps = {
    services,
    leases: leaseStore,
    holder,
    shards: settings.shards,
    grant: (shard) => ref.manager?.grant(shard),
    now: () => new Date(),
    redispatchAfterMs: settings.redispatchAfterMs,
    metrics,
  };
  const reconcilers: ResourceReconciler[] = [
    new NetworkReconciler(deps, settings.observeEveryMs),
    new ServerReconciler(deps),
    new BucketReconciler(deps),
    new ClusterReconciler(deps),
  ];
  const controllers = new Map<ResourceKind, Controller>();
  for (const reconciler of reconcilers) {
    controllers.set(
      reconciler.kind,
      new Controller({
        name: reconciler.kind,
        reconciler,
        queue: new WorkQueue({ clock, ratePerSecond: 5_000, burst: 10_000 }),
        concurrency: settings.concurrency,
        log: log.child({ controller: reconciler.kind }),
        clock,
        metrics,
      }),
    );
  }

  const owned = (key: string): boolean =>
    ref.manager?.grant(shardOf(keyId(key), settings.shards)) !== undefined;
  const enqueue = (key: string, lane: Lane = "fresh"): void => {
    const kind = key.slice(0, key.indexOf(":")) as ResourceKind;
    if (owned(key)) controllers.get(kind)?.queue.add(key, lane);
  };
  const resyncShards = async (shards?: ReadonlySet<number>): Promise<number> => {
    let queued = 0;
    for (const { kind, id } of await services.inventory.allResourceKeys()) {
      const shard = shardOf(id, settings.shards);
      if (shards ? shards.has(shard) : ref.manager?.grant(shard) !== undefined) {
        controllers.get(kind)?.queue.add(`${kind}:${id}`, "resync");
        queued++;
      }
    }
    return queued;
  };

  const acquired = new Set<number>();
  let listAcquired: ReturnType<typeof setTimeout> | undefined;
  const manager = new LeaseManager({
    port: options.leaseDb ? new LeaseStore(options.leaseDb) : leaseStore,
    holder,
    datacenterId: options.datacenterId,
    shards: settings.shards,
    ttlMs: settings.leaseTtlMs,
    renewMs: settings.leaseRenewMs,
    retryMs: settings.leaseRetryMs,
    clock,
    log: log.child({ component: "leases", holder }),
    random: Math.random,
    onAcquired: (grant) => {
      // Shards taken in one round are listed together: one read of the keys, not one per shard
      // (a start takes every shard, and each listing reads every resource's key).
      acquired.add(grant.shard);
      listAcquired ??= setTimeout(() => {
        const shards = new Set(acquired);
        acquired.clear();
        listAcquired = undefined;
        void resyncShards(shards).catch((err: unknown) =>
          log.warn({ err, shards: shards.size }, "listing new shards' keys failed"),
        );
      }, ACQUIRED_LISTING_DELAY_MS);
    },
    onLost: (shard) => {
      for (const controller of controllers.values())
        controller.queue.remove((key) => shardOf(keyId(key), settings.shards) === shard);
    },
  });
  ref.manager = manager;
  const held = manager;
  new Gauge({
    name: "dataverket_leases_held",
    help: "Shard leases this replica holds",
    registers: [metrics],
    collect() {
      this.set(held.held().length);
    },
  });

  for (const controller of controllers.values()) controller.start();
  await manager.start();

  const unlisten = await services.db.listen(INTENT_CHANNEL, (payload) => enqueue(payload));

  const subscriptions: ConsumerMessages[] = [];
  if (options.js) {
    for (const stream of [STREAMS.events, STREAMS.deadLetters]) {
      const consumer = await options.js.consumers.get(stream, {
        deliver_policy: DeliverPolicy.New,
      });
      const messages = await consumer.consume();
      subscriptions.push(messages);
      void (async () => {
        for await (const msg of messages) {
          try {
            const data = msg.json<{ data?: Record<string, unknown> }>().data ?? {};
            if (typeof data.resource_kind === "string" && typeof data.resource_id === "string")
              enqueue(`${data.resource_kind}:${data.resource_id}`);
          } catch {
            // Not an envelope: nothing to trigger.
          }
        }
      })();
    }
  }

  let resyncTimer: unknown;
  const scheduleResync = (): void => {
    resyncTimer = clock.setTimer(
      () => {
        void resyncShards()
          .catch((err: unknown) => log.warn({ err }, "resync failed"))
          .finally(scheduleResync);
      },
      settings.resyncMs * (0.8 + Math.random() * 0.4),
    );
  };
  scheduleResync();

  lifecycle.add("controllers", async () => {
    clock.clearTimer(resyncTimer);
    if (listAcquired) clearTimeout(listAcquired);
    for (const s of subscriptions) await s.close();
    await unlisten();
    // Finish the passes in flight while the leases are still held, then give the leases back.
    await Promise.all([...controllers.values()].map((c) => c.stop()));
    await held.stop();
  });
  log.info({ holder, shards: settings.shards }, "controllers started");

  return {
    holder,
    leases: held,
    enqueue,
    resync: () => resyncShards(),
    controller: (kind) => controllers.get(kind) as Controller,
  };
}

/** A replica's name in leases: `<hostname>-<pid>-<6 hex digits>`. */
export function newHolder(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}
