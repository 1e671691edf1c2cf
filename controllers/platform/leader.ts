import type { Grant, LeaseStore } from "../../src/contexts/runtime/index.js";
import type { Tx } from "../../src/db/index.js";
import type { Logger } from "../../src/observability/index.js";
import type { Clock } from "../../src/reconcile/index.js";
import type { KubeLeaseElector } from "./kube-lease.js";

/**
 * The platform controller's lease row in `runtime.leases`: below the tenant shards (0…n-1),
 * which the tenant lease managers never take.
 */
export const PLATFORM_SHARD = -1;

/** What the leadership needs of the lease table: {@link LeaseStore}, or a test's in-memory one. */
export type PlatformLeasePort = Pick<
  LeaseStore,
  "ensureShard" | "acquire" | "renew" | "release" | "checkFence"
>;

export interface PlatformLeadershipOptions {
  readonly leases: PlatformLeasePort;
  readonly holder: string;
  readonly ttlMs: number;
  readonly renewMs: number;
  readonly retryMs: number;
  /** With a cluster: the Kubernetes Lease must be held too, and first. */
  readonly kube?: KubeLeaseElector;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onStartedLeading: () => void;
  readonly onStoppedLeading: () => void;
}

/**
 * Exactly one replica runs the platform controllers. With a cluster, the leader is elected with
 * a `coordination.k8s.io` Lease, as operators are; on top of it, the leader also holds a lease in
 * PostgreSQL (shard {@link PLATFORM_SHARD}) and every write it makes checks that lease's fencing
 * token, so a leader that stalled past its Kubernetes Lease and wakes up cannot write after its
 * successor started. Without a cluster the PostgreSQL lease alone elects the leader.
 */
export class PlatformLeadership {
  readonly #o: PlatformLeadershipOptions;
  #grant: Grant | undefined;
  #renewedAt = 0;
  #timer: unknown;
  #round: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: PlatformLeadershipOptions) {
    this.#o = options;
  }

  get leading(): boolean {
    return this.#grant !== undefined;
  }

  /** The fence every write of the platform controllers checks first. */
  fence = async (tx: Tx): Promise<void> => {
    const grant = this.#grant;
    if (!grant) throw new Error("not the platform controller's leader");
    await this.#o.leases.checkFence(tx, grant, this.#o.holder);
  };

  async start(): Promise<void> {
    await this.#o.leases.ensureShard(PLATFORM_SHARD);
    await this.#tick();
  }

  #schedule(): void {
    if (this.#stopped) return;
    const { retryMs, clock } = this.#o;
    this.#timer = clock.setTimer(() => void this.#tick(), retryMs * (0.8 + Math.random() * 0.4));
  }

  #tick(): Promise<void> {
    this.#round = this.#doRound()
      .catch((err: unknown) => this.#o.log.warn({ err }, "platform leader election round failed"))
      .finally(() => this.#schedule());
    return this.#round;
  }

  async #doRound(): Promise<void> {
    const { leases, holder, ttlMs, renewMs, clock, kube, log } = this.#o;
    if (this.#stopped) return;
    const kubeLeading = kube ? await kube.tryAcquireOrRenew() : true;
    if (!kubeLeading) {
      if (this.#grant) {
        const grant = this.#grant;
        this.#lose("the Kubernetes Lease is held by another replica");
        await leases.release(grant, holder).catch(() => undefined);
      }
      return;
    }
    const askedAt = clock.now();
    if (!this.#grant) {
      const grant = await leases.acquire(PLATFORM_SHARD, holder, ttlMs);
      if (!grant) return;
      this.#grant = grant;
      this.#renewedAt = askedAt;
      log.info({ token: grant.token }, "platform controller leading");
      this.#o.onStartedLeading();
      return;
    }
    if (askedAt - this.#renewedAt >= renewMs) {
      const renewed = await leases.renew([this.#grant], holder, ttlMs).catch((err: unknown) => {
        log.warn({ err }, "platform lease renewal failed; retrying");
        return undefined;
      });
      if (renewed?.has(PLATFORM_SHARD)) this.#renewedAt = askedAt;
      else if (renewed) this.#lose("renewal refused");
    }
    if (this.#grant && clock.now() - this.#renewedAt > ttlMs * 0.9)
      this.#lose("not renewed in time");
  }

  #lose(reason: string): void {
    if (!this.#grant) return;
    this.#grant = undefined;
    this.#o.log.warn({ reason }, "platform controller stopped leading");
    this.#o.onStoppedLeading();
  }

  /** Stops electing; gives both leases back so a successor need not wait for expiry. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimer(this.#timer);
    await this.#round;
    const grant = this.#grant;
    if (grant) {
      this.#lose("shutting down");
      await this.#o.leases.release(grant, this.#o.holder).catch(() => undefined);
    }
    await this.#o.kube?.release();
  }
}
