import type { Clock } from "./clock.js";

/**
 * Why a key is queued. `fresh`: a change someone is waiting for (a request, an event).
 * `resync`: the periodic re-check of everything. `retry`: a delayed requeue or backoff.
 */
export type Lane = "fresh" | "resync" | "retry";

/** Options of {@link WorkQueue}. */
export interface WorkQueueOptions {
  readonly clock: Clock;
  /** First per-key backoff after a failure; doubles each time. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Overall rate limit: keys handed out per second, and the burst allowed. */
  readonly ratePerSecond?: number;
  readonly burst?: number;
  /**
   * How much earlier a fresh key counts than a resync key queued at the same moment. A fresh
   * change jumps ahead of a whole resync, but a resync key waits at most this long behind fresh
   * ones: neither lane can starve the other.
   */
  readonly freshBonusMs?: number;
}

interface Entry {
  readonly key: string;
  readonly priority: number;
  readonly seq: number;
}

/** A binary min-heap of entries by (priority, seq). */
class Heap {
  readonly #items: Entry[] = [];
  get size(): number {
    return this.#items.length;
  }
  push(entry: Entry): void {
    const items = this.#items;
    items.push(entry);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(items[i] as Entry, items[parent] as Entry)) break;
      [items[i], items[parent]] = [items[parent] as Entry, items[i] as Entry];
      i = parent;
    }
  }
  pop(): Entry | undefined {
    const items = this.#items;
    const top = items[0];
    const last = items.pop();
    if (items.length > 0 && last) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && less(items[l] as Entry, items[m] as Entry)) m = l;
        if (r < items.length && less(items[r] as Entry, items[m] as Entry)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m] as Entry, items[i] as Entry];
        i = m;
      }
    }
    return top;
  }
}

const less = (a: Entry, b: Entry): boolean =>
  a.priority < b.priority || (a.priority === b.priority && a.seq < b.seq);

/**
 * A keyed work queue in the manner of client-go's, with its known weak spots fixed: keys only,
 * de-duplicated; at most one in flight per key (a key added while in flight is handed out again
 * after `done`); per-key exponential backoff; an overall token-bucket rate limit; delayed
 * requeue; and a priority that ages, so the first list after a start or a resync of 100,000 keys
 * never makes a fresh change wait behind it, and a resync key is never starved by fresh ones.
 */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #freshBonusMs: number;
  readonly #heap = new Heap();
  /** Queued keys and the priority of their live heap entry (others are stale). */
  readonly #queued = new Map<string, { priority: number; since: number }>();
  readonly #processing = new Set<string>();
  /** Keys added while in flight, with the best lane they were added in. */
  readonly #dirty = new Map<string, Lane>();
  readonly #delayed = new Map<string, { at: number; handle: unknown }>();
  readonly #failures = new Map<string, number>();
  readonly #waiters: ((key: string | undefined) => void)[] = [];
  #seq = 0;
  #tokens: number;
  #tokensAt: number;
  #rateTimer: unknown;
  #shutdown = false;

  constructor(options: WorkQueueOptions) {
    this.#clock = options.clock;
    this.#baseDelayMs = options.baseDelayMs ?? 5;
    this.#maxDelayMs = options.maxDelayMs ?? 60_000;
    this.#ratePerMs = (options.ratePerSecond ?? 1000) / 1000;
    this.#burst = options.burst ?? 1000;
    this.#freshBonusMs = options.freshBonusMs ?? 5_000;
    this.#tokens = this.#burst;
    this.#tokensAt = this.#clock.now();
  }

  /** Queues `key` (no-op when already queued with a better or equal priority). */
  add(key: string, lane: Lane = "fresh"): void {
    if (this.#shutdown) return;
    if (this.#processing.has(key)) {
      const current = this.#dirty.get(key);
      if (current === undefined || rank(lane) < rank(current)) this.#dirty.set(key, lane);
      return;
    }
    const now = this.#clock.now();
    const priority = lane === "fresh" ? now - this.#freshBonusMs : now;
    const existing = this.#queued.get(key);
    if (existing && existing.priority <= priority) return;
    this.#queued.set(key, { priority, since: existing?.since ?? now });
    this.#heap.push({ key, priority, seq: ++this.#seq });
    this.#dispatch();
  }

  /** Queues `key` after `ms` (the earliest of several requests wins). */
  addAfter(key: string, ms: number): void {
    if (this.#shutdown) return;
    if (ms <= 0) return this.add(key, "retry");
    const at = this.#clock.now() + ms;
    const existing = this.#delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) this.#clock.clearTimer(existing.handle);
    const handle = this.#clock.setTimer(() => {
      this.#delayed.delete(key);
      this.add(key, "retry");
    }, ms);
    this.#delayed.set(key, { at, handle });
  }

  /** Queues `key` after its next backoff: base × 2^failures, capped. Returns the delay. */
  addRateLimited(key: string): number {
    const failures = this.#failures.get(key) ?? 0;
    this.#failures.set(key, failures + 1);
    const delay = Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** failures);
    this.addAfter(key, delay);
    return delay;
  }

  /** Forgets a key's failures (after a success): its next backoff starts from the base again. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Failures counted for a key. */
  failures(key: string): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Waits for the next key and marks it in flight; `undefined` once the queue shuts down. */
  get(): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#dispatch();
    });
  }

  /** Marks `key` no longer in flight; if it was added meanwhile, queues it again. */
  done(key: string): void {
    this.#processing.delete(key);
    const lane = this.#dirty.get(key);
    if (lane !== undefined) {
      this.#dirty.delete(key);
      this.add(key, lane);
    }
    this.#dispatch();
  }

  /** Drops queued and delayed keys that match (their shard was lost); in-flight ones finish. */
  remove(predicate: (key: string) => boolean): number {
    let removed = 0;
    for (const key of [...this.#queued.keys()]) {
      if (predicate(key)) {
        this.#queued.delete(key);
        removed++;
      }
    }
    for (const [key, delayed] of [...this.#delayed]) {
      if (predicate(key)) {
        this.#clock.clearTimer(delayed.handle);
        this.#delayed.delete(key);
      }
    }
    for (const key of [...this.#dirty.keys()]) if (predicate(key)) this.#dirty.delete(key);
    return removed;
  }

  /** Keys waiting to be handed out. */
  get length(): number {
    return this.#queued.size;
  }

  /** Keys in flight. */
  get inFlight(): number {
    return this.#processing.size;
  }

  /** How long the longest-waiting queued key has waited, in ms. */
  oldestAgeMs(): number {
    let oldest = Infinity;
    for (const { since } of this.#queued.values()) oldest = Math.min(oldest, since);
    return oldest === Infinity ? 0 : this.#clock.now() - oldest;
  }

  /** Stops handing out keys; pending `get()`s resolve `undefined`. */
  shutdown(): void {
    this.#shutdown = true;
    for (const { handle } of this.#delayed.values()) this.#clock.clearTimer(handle);
    this.#delayed.clear();
    if (this.#rateTimer !== undefined) this.#clock.clearTimer(this.#rateTimer);
    for (const waiter of this.#waiters.splice(0)) waiter(undefined);
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#tokensAt) * this.#ratePerMs);
    this.#tokensAt = now;
  }

  #dispatch(): void {
    if (this.#shutdown) {
      for (const waiter of this.#waiters.splice(0)) waiter(undefined);
      return;
    }
    while (this.#waiters.length > 0 && this.#queued.size > 0) {
      this.#refill();
      if (this.#tokens < 1) {
        if (this.#rateTimer === undefined) {
          const wait = Math.ceil((1 - this.#tokens) / this.#ratePerMs);
          this.#rateTimer = this.#clock.setTimer(() => {
            this.#rateTimer = undefined;
            this.#dispatch();
          }, wait);
        }
        return;
      }
      const entry = this.#heap.pop();
      if (!entry) return;
      const live = this.#queued.get(entry.key);
      // Entries superseded by a better priority (or removed) are skipped here.
      if (!live || live.priority !== entry.priority) continue;
      this.#queued.delete(entry.key);
      this.#processing.add(entry.key);
      this.#tokens -= 1;
      (this.#waiters.shift() as (key: string | undefined) => void)(entry.key);
    }
  }
}

function rank(lane: Lane): number {
  return lane === "fresh" ? 0 : lane === "retry" ? 1 : 2;
}
