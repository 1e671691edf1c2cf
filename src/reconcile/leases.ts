import type { Logger } from "../observability/index.js";
import type { Clock } from "./clock.js";

/** A shard grant. */
export interface LeaseGrant {
  readonly shard: number;
  readonly token: number;
}

/** Where leases live (PostgreSQL in production). */
export interface LeasePort {
  ensureShards(count: number): Promise<void>;
  acquire(shard: number, holder: string, ttlMs: number): Promise<LeaseGrant | undefined>;
  /** Renews the unexpired grants among `grants`; returns the shards renewed. */
  renew(grants: readonly LeaseGrant[], holder: string, ttlMs: number): Promise<Set<number>>;
  release(grant: LeaseGrant, holder: string): Promise<void>;
  heartbeat(holder: string, datacenterId: string, ttlMs: number): Promise<string[]>;
  leave(holder: string): Promise<void>;
  list(): Promise<{ shard: number; holder: string | null; live: boolean }[]>;
}

/** Options of {@link LeaseManager}. */
export interface LeaseManagerOptions {
  readonly port: LeasePort;
  /** This replica's identity (`host-pid-random`). */
  readonly holder: string;
  readonly datacenterId: string;
  readonly shards: number;
  /** Lease duration (Kubernetes: 15 s). */
  readonly ttlMs: number;
  /** Renew a held lease after this long (Kubernetes: 10 s). */
  readonly renewMs: number;
  /** How often to look for shards to take (Kubernetes: 2 s). */
  readonly retryMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly random: () => number;
  onAcquired(grant: LeaseGrant): void;
  onLost(shard: number): void;
}

/**
 * Holds a fair share of the shards: takes free or expired ones up to ⌈shards / live replicas⌉,
 * renews what it holds, gives back extras when replicas join, and lets go of everything on
 * stop. A lease it fails to renew in time is treated as lost at once, before anyone else can
 * take it over; the fencing check in PostgreSQL refuses its writes either way.
 */
export class LeaseManager {
  readonly #o: LeaseManagerOptions;
  readonly #held = new Map<number, { grant: LeaseGrant; renewedAt: number }>();
  #timer: unknown;
  #ticking: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: LeaseManagerOptions) {
    this.#o = options;
  }

  /** The grants held now. */
  held(): LeaseGrant[] {
    return [...this.#held.values()].map((h) => h.grant);
  }

  /** The grant of `shard`, if held. */
  grant(shard: number): LeaseGrant | undefined {
    return this.#held.get(shard)?.grant;
  }

  async start(): Promise<void> {
    await this.#o.port.ensureShards(this.#o.shards);
    await this.tick();
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#o.clock.clearTimer(this.#timer);
    await this.#ticking;
    for (const { grant } of [...this.#held.values()]) {
      this.#held.delete(grant.shard);
      this.#o.onLost(grant.shard);
      await this.#o.port
        .release(grant, this.#o.holder)
        .catch((err: unknown) =>
          this.#o.log.warn({ err, shard: grant.shard }, "could not release a lease"),
        );
    }
    await this.#o.port.leave(this.#o.holder).catch(() => undefined);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const jitter = 0.8 + this.#o.random() * 0.4;
    this.#timer = this.#o.clock.setTimer(() => {
      this.#ticking = this.tick().finally(() => this.#schedule());
    }, this.#o.retryMs * jitter);
  }

  /** One round: renew, heartbeat, take a fair share, give back extras. */
  async tick(): Promise<void> {
    const { port, holder, clock, ttlMs, renewMs, log } = this.#o;
    const now = clock.now();
    const due: { grant: LeaseGrant; renewedAt: number }[] = [];
    for (const entry of [...this.#held.values()]) {
      const age = now - entry.renewedAt;
      if (age >= ttlMs * 0.9) {
        // Could not renew in time (the database was away, or this process was paused): assume
        // the lease is gone before someone else can hold it.
        this.#lose(entry.grant.shard, "not renewed in time");
      } else if (age >= renewMs) {
        due.push(entry);
      }
    }
    if (due.length > 0) {
      // The lease runs from when the database handled the renewal, which is no earlier than
      // when it was asked: counting from the asking errs on the safe side.
      const askedAt = clock.now();
      try {
        const renewed = await port.renew(
          due.map((e) => e.grant),
          holder,
          ttlMs,
        );
        for (const entry of due) {
          if (this.#held.get(entry.grant.shard) !== entry) continue;
          if (renewed.has(entry.grant.shard)) entry.renewedAt = askedAt;
          else this.#lose(entry.grant.shard, "renewal refused");
        }
      } catch (err) {
        log.warn({ err, shards: due.length }, "lease renewal failed; retrying");
      }
    }
    let members: string[];
    let leases: { shard: number; holder: string | null; live: boolean }[];
    try {
      members = await port.heartbeat(holder, this.#o.datacenterId, ttlMs);
      leases = await port.list();
    } catch (err) {
      log.warn({ err }, "lease round failed; retrying");
      return;
    }
    const replicas = Math.max(1, new Set([...members, holder]).size);
    const fair = Math.ceil(this.#o.shards / replicas);
    if (this.#held.size < fair) {
      // Only shards of this key space: the table also holds rows of other lease users (the
      // platform controller's, below 0) and of a larger shard count used before.
      const free = leases
        .filter((l) => !l.live && l.shard >= 0 && l.shard < this.#o.shards)
        .map((l) => l.shard);
      for (let i = free.length - 1; i > 0; i--) {
        const j = Math.floor(this.#o.random() * (i + 1));
        [free[i], free[j]] = [free[j] as number, free[i] as number];
      }
      const started = clock.now();
      for (const shard of free) {
        if (this.#held.size >= fair || this.#stopped) break;
        // Renewals come first: leave the rest for the next round rather than keep them waiting.
        if (clock.now() - started > this.#o.retryMs) break;
        const askedAt = clock.now();
        const grant = await port.acquire(shard, holder, ttlMs).catch(() => undefined);
        if (!grant) continue;
        this.#held.set(shard, { grant, renewedAt: askedAt });
        log.info({ shard, token: grant.token }, "lease acquired");
        this.#o.onAcquired(grant);
      }
    } else if (this.#held.size > fair) {
      const extras = [...this.#held.values()]
        .sort((a, b) => b.grant.shard - a.grant.shard)
        .slice(0, this.#held.size - fair);
      for (const { grant } of extras) {
        this.#lose(grant.shard, "rebalancing to a new replica");
        await port.release(grant, holder).catch(() => undefined);
      }
    }
  }

  #lose(shard: number, reason: string): void {
    if (!this.#held.delete(shard)) return;
    this.#o.log.warn({ shard, reason }, "lease lost");
    this.#o.onLost(shard);
  }
}
