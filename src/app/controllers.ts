import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import {
  BucketReconciler,
  ClusterReconciler,
  NetworkReconciler,
  postgresPorts,
  type ReconcilerDeps,
  ServerReconciler,
} from "../../controllers/index.js";
import type { Config } from "../config/index.js";
import { INTENT_CHANNEL, type ResourceKind } from "../contexts/inventory/index.js";
import { LeaseStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { resourceEventSource } from "../jetstream/index.js";
import type { Logger, Registry } from "../observability/index.js";
import {
  type Clock,
  type Controller,
  type Lane,
  listenSource,
  siteEventSource,
  Manager,
  realClock,
  type Source,
} from "../reconcile/index.js";
import type { Services } from "./services.js";

/** The running controllers of a process. */
export interface ControlPlane {
  readonly holder: string;
  readonly manager: Manager;
  /** Queues a key (`<kind>:<id>`) if this replica owns its shard. */
  enqueue(key: string, lane?: Lane): void;
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
  readonly random?: () => number;
  /**
   * Where the lease manager renews and takes leases: a pool of its own, so renewals never queue
   * behind reconcile passes for a connection. Defaults to the services' database.
   */
  readonly leaseDb?: Database;
}

/**
 * Wires the tenant-resource controllers of a replica: the reconcilers of the four kinds on the
 * reconcile manager (src/reconcile), with `LISTEN dv_intent` and the JetStream domain and
 * dead-letter events as sources, and the inventory answering the resync.
 */
export async function startControllers(options: StartControllersOptions): Promise<ControlPlane> {
  const { services, settings, log, metrics, lifecycle } = options;
  const holder = options.holder ?? newHolder();
  const leaseStore = new LeaseStore(services.db);
  // The reconcilers ask the manager for grants; it is built after them.
  const ref: { manager?: Manager } = {};
  const deps: ReconcilerDeps = {
    ports: postgresPorts({ ...services, leases: leaseStore, shards: settings.shards }),
    holder,
    shards: settings.shards,
    grant: (shard) => ref.manager?.grant(shard),
    now: () => new Date(),
    redispatchAfterMs: settings.redispatchAfterMs,
    metrics,
  };
  const sources: Source[] = [
    listenSource(services.db, INTENT_CHANNEL),
    siteEventSource(services.db, options.datacenterId),
  ];
  if (options.js) sources.push(resourceEventSource(options.js));
  const manager = new Manager({
    holder,
    datacenterId: options.datacenterId,
    shards: settings.shards,
    leases: options.leaseDb ? new LeaseStore(options.leaseDb) : leaseStore,
    leaseTtlMs: settings.leaseTtlMs,
    leaseRenewMs: settings.leaseRenewMs,
    leaseRetryMs: settings.leaseRetryMs,
    controllers: [
      new NetworkReconciler(deps, settings.observeEveryMs),
      new ServerReconciler(deps),
      new BucketReconciler(deps),
      new ClusterReconciler(deps),
    ].map((reconciler) => ({ name: reconciler.kind, reconciler })),
    concurrency: settings.concurrency,
    sources,
    resync: {
      due: (shards, shardCount) =>
        services.inventory.resyncDue(
          shards,
          shardCount,
          { kinds: ["network"], everyMs: settings.observeEveryMs },
          services.now(),
        ),
    },
    resyncMs: settings.resyncMs,
    clock: options.clock ?? realClock,
    random: options.random ?? Math.random,
    log,
    metrics,
  });
  ref.manager = manager;
  await manager.start();
  lifecycle.add("controllers", () => manager.stop());
  log.info({ holder, shards: settings.shards }, "controllers started");
  return {
    holder,
    manager,
    enqueue: (key, lane) => manager.enqueue(key, lane),
    controller: (kind) => manager.controller(kind),
  };
}

/** A replica's name in leases: `<hostname>-<pid>-<6 hex digits>`. */
export function newHolder(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString("hex")}`;
}
