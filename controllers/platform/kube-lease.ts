import type { CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import type { Logger } from "../../src/observability/index.js";
import { type Clock, realClock } from "../../src/reconcile/index.js";

/** Timings of leader election, client-go's names and defaults (15 s, 10 s, 2 s). */
export interface KubeLeaseTimings {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
}

export const KUBE_LEASE_DEFAULTS: KubeLeaseTimings = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

const status = (err: unknown): number | undefined => {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
};

/**
 * Leader election with a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
 * the holder renews every retry period; a candidate takes the lease only when its record has not
 * changed for a whole lease duration *as seen on the candidate's own clock* (never comparing
 * clocks across machines); every write names the resourceVersion it read, so two candidates
 * never both win. A leader that cannot renew within the renew deadline steps down.
 */
export class KubeLeaseElector {
  readonly #api: CoordinationV1Api;
  readonly #namespace: string;
  readonly #name: string;
  readonly #identity: string;
  readonly #timings: KubeLeaseTimings;
  readonly #clock: Clock;
  readonly #log: Logger;
  /** The record last seen and when it was seen (our clock), for expiry. */
  #observed: { key: string; at: number } | undefined;
  #leading = false;
  #renewedAt = 0;

  constructor(options: {
    api: CoordinationV1Api;
    namespace: string;
    name: string;
    identity: string;
    log: Logger;
    timings?: Partial<KubeLeaseTimings>;
    clock?: Clock;
  }) {
    this.#api = options.api;
    this.#namespace = options.namespace;
    this.#name = options.name;
    this.#identity = options.identity;
    this.#timings = { ...KUBE_LEASE_DEFAULTS, ...options.timings };
    this.#clock = options.clock ?? realClock;
    this.#log = options.log.child({ lease: `${options.namespace}/${options.name}` });
  }

  get timings(): KubeLeaseTimings {
    return this.#timings;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * One round: acquire or renew. Returns whether this candidate leads afterwards. A leader whose
   * renewals fail past the renew deadline stops leading.
   */
  async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.#clock.now();
    try {
      const won = await this.#attempt(now);
      if (won) this.#renewedAt = now;
      this.#setLeading(won);
    } catch (err) {
      this.#log.warn({ err }, "leader election: the Lease could not be read or written");
      if (this.#leading && this.#clock.now() - this.#renewedAt > this.#timings.renewDeadlineMs)
        this.#setLeading(false);
    }
    return this.#leading;
  }

  /** Gives the lease up (on shutdown) so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    if (!this.#leading) return;
    this.#setLeading(false);
    try {
      const lease = await this.#api.readNamespacedLease({
        name: this.#name,
        namespace: this.#namespace,
      });
      if (lease.spec?.holderIdentity !== this.#identity) return;
      // An empty holder is free to take at once (client-go releases the same way).
      lease.spec = { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 };
      await this.#api.replaceNamespacedLease({
        name: this.#name,
        namespace: this.#namespace,
        body: lease,
      });
    } catch (err) {
      this.#log.warn({ err }, "leader election: could not release the Lease");
    }
  }

  #setLeading(leading: boolean): void {
    if (leading === this.#leading) return;
    this.#leading = leading;
    this.#log.info({ identity: this.#identity }, leading ? "became leader" : "stopped leading");
  }

  async #attempt(now: number): Promise<boolean> {
    const durationSeconds = Math.ceil(this.#timings.leaseDurationMs / 1000);
    // Loaded when first needed: the client weighs most of a process's start-up.
    const { V1MicroTime } = await import("@kubernetes/client-node");
    const microNow = new V1MicroTime(new Date(now).toISOString());
    let lease: V1Lease;
    try {
      lease = await this.#api.readNamespacedLease({
        name: this.#name,
        namespace: this.#namespace,
      });
    } catch (err) {
      if (status(err) !== 404) throw err;
      try {
        await this.#api.createNamespacedLease({
          namespace: this.#namespace,
          body: {
            metadata: { name: this.#name, namespace: this.#namespace },
            spec: {
              holderIdentity: this.#identity,
              leaseDurationSeconds: durationSeconds,
              acquireTime: microNow,
              renewTime: microNow,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (createErr) {
        if (status(createErr) === 409) return false; // someone else created it first
        throw createErr;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? "";
    // The record's identity: any change to it restarts the expiry countdown on our clock.
    const key = `${holder}|${String(spec.renewTime ?? "")}|${spec.leaseTransitions ?? 0}`;
    if (this.#observed?.key !== key) this.#observed = { key, at: now };
    const expiredAt = this.#observed.at + (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (holder !== "" && holder !== this.#identity && now < expiredAt) return false;

    const takingOver = holder !== this.#identity;
    lease.spec = {
      ...spec,
      holderIdentity: this.#identity,
      leaseDurationSeconds: durationSeconds,
      renewTime: microNow,
      ...(takingOver
        ? { acquireTime: microNow, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {}),
    };
    try {
      // The read's resourceVersion travels with the body: a concurrent writer gets 409.
      await this.#api.replaceNamespacedLease({
        name: this.#name,
        namespace: this.#namespace,
        body: lease,
      });
      return true;
    } catch (err) {
      if (status(err) === 409) return false;
      throw err;
    }
  }
}
