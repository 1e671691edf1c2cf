// The engine of the platform controllers, as src/reconcile's Manager is the tenant kinds': one
// work queue and controller for the platform kinds, fed by a PlatformSource, run by the replica
// that leads. Time comes from the injected clock; the process passes the real one.
import type { CoordinationV1Api } from "@kubernetes/client-node";
import type { Tx } from "../../src/db/index.js";
import type { Logger, Registry } from "../../src/observability/index.js";
import { type Clock, Controller, WorkQueue } from "../../src/reconcile/index.js";
import { KubeLeaseElector } from "./kube-lease.js";
import { type PlatformLeasePort, PlatformLeadership } from "./leader.js";
import { PlatformReconciler } from "./reconciler.js";
import type { PlatformSource } from "./source.js";
import type { PlatformSyncPort } from "./sync.js";

/** The name of the leader-election Lease of the platform controllers. */
export const PLATFORM_LEASE_NAME = "dataverket-platform-controller";

/** The lease timings of the platform leader (the controller settings of the process). */
export interface PlatformLeaseSettings {
  readonly leaseTtlMs: number;
  readonly leaseRenewMs: number;
  readonly leaseRetryMs: number;
}

/** Options of {@link PlatformManager}. */
export interface PlatformManagerOptions {
  /** Where platform objects come from: a cluster, or a directory of the same YAML. */
  readonly source: PlatformSource;
  /**
   * What the reconciler writes through, given the leader's fence to check first in every write
   * transaction: a `PlatformSync` over the platform and inventory stores, or a test's fake.
   */
  readonly sync: (fence: (tx: Tx) => Promise<void>) => PlatformSyncPort;
  /** The lease table the leader holds shard `PLATFORM_SHARD` of (`LeaseStore`). */
  readonly leases: PlatformLeasePort;
  /** This replica's name in the leases. */
  readonly holder: string;
  readonly settings: PlatformLeaseSettings;
  /** With a cluster: the Kubernetes Lease the leader must hold. */
  readonly kube?: { readonly api: CoordinationV1Api; readonly namespace: string };
  readonly clock: Clock;
  readonly log: Logger;
  readonly metrics?: Registry;
}

/**
 * The platform controllers of a replica: the source's watch feeds keys into a work queue, and
 * while this replica leads ({@link PlatformLeadership}: the Kubernetes Lease if any, and the
 * PostgreSQL lease) the controller reconciles them, every write fenced. A new leader queues every
 * key of its source; a former one drops what it had queued.
 */
export class PlatformManager {
  readonly source: PlatformSource;
  readonly leadership: PlatformLeadership;
  readonly queue: WorkQueue;
  readonly #controller: Controller;
  readonly #holder: string;
  readonly #log: Logger;

  constructor(options: PlatformManagerOptions) {
    const { source, holder, settings, clock, log } = options;
    this.source = source;
    this.#holder = holder;
    this.#log = log;
    const queue = new WorkQueue({ clock, ratePerSecond: 100, burst: 200 });
    this.queue = queue;
    this.leadership = new PlatformLeadership({
      leases: options.leases,
      holder,
      ttlMs: settings.leaseTtlMs,
      renewMs: settings.leaseRenewMs,
      retryMs: settings.leaseRetryMs,
      ...(options.kube
        ? {
            kube: new KubeLeaseElector({
              api: options.kube.api,
              namespace: options.kube.namespace,
              name: PLATFORM_LEASE_NAME,
              identity: holder,
              log: log.child({ component: "leader-election" }),
              timings: {
                leaseDurationMs: settings.leaseTtlMs,
                renewDeadlineMs: settings.leaseRenewMs,
                retryPeriodMs: settings.leaseRetryMs,
              },
              clock,
            }),
          }
        : {}),
      clock,
      log: log.child({ component: "platform-leader", holder }),
      // A new leader looks at everything; a former one drops what it had queued.
      onStartedLeading: () => {
        for (const key of source.keys()) queue.add(key, "resync");
      },
      onStoppedLeading: () => queue.remove(() => true),
    });
    this.#controller = new Controller({
      name: "platform",
      reconciler: new PlatformReconciler(source, options.sync(this.leadership.fence)),
      queue,
      concurrency: 2,
      log: log.child({ controller: "platform", source: source.name }),
      clock,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
  }

  /** Starts the source's watch (keys queue only while leading), the controller, then the election. */
  async start(): Promise<void> {
    await this.source.start((key) => {
      if (this.leadership.leading) this.queue.add(key);
    });
    this.#controller.start();
    await this.leadership.start();
    this.#log.info(
      { source: this.source.name, holder: this.#holder },
      "platform controllers started",
    );
  }

  /** Stops the watch, gives the leases back, and lets the passes in flight finish. */
  async stop(): Promise<void> {
    await this.source.stop();
    await this.leadership.stop();
    this.queue.shutdown();
    await this.#controller.stop();
  }
}

/** Builds and starts a {@link PlatformManager}. */
export async function startPlatformManager(
  options: PlatformManagerOptions,
): Promise<PlatformManager> {
  const manager = new PlatformManager(options);
  await manager.start();
  return manager;
}
