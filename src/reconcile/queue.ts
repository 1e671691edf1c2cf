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
   * While both lanes have keys waiting, one in this many handed out is a resync key: a fresh
   * change goes ahead of a whole resync however long ago it was queued, and a resync is never
   * starved by fresh changes (it gets at least 1/n of the passes).
   */
  readonly resyncEvery?: number;
}

interface Entry {
  readonly key: string;
  readonly seq: number;
}

/** A first-in first-out list; taking from the front is O(1) (the array is compacted now and then). */
class Fifo {
  #items: Entry[] = [];
  #head = 0;
  get size(): number {
    return this.#items.length - this.#head;
  }
  push(entry: Entry): void {
    this.#items.push(entry);
  }
  peek(): Entry | undefined {
    return this.#items[this.#head];
  }
  shift(): Entry | undefined {
    const entry = this.#items[this.#head];
    if (entry === undefined) return undefined;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return entry;
  }
}

/** The two lanes keys wait in: changes someone waits for (and retries), and the resync. */
type Queue = "urgent" | "resync";

/**
 * A keyed work queue in the manner of client-go's, with its known weak spots fixed: keys only,
 * de-duplicated; at most one in flight per key (a key added while in flight is handed out again
 * after `done`); per-key exponential backoff; an overall token-bucket rate limit; delayed
 * requeue; and two lanes, so the first list after a start or a resync of 100,000 keys never
 * makes a fresh change wait behind it, and a resync key is never starved by fresh ones.
 */
export class WorkQueue {
  readonly #clock: Clock;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #resyncEvery: number;
  readonly #lanes: Record<Queue, Fifo> = { urgent: new Fifo(), resync: new Fifo() };
  /** Urgent keys handed out in a row while resync keys waited. */
  #urgentStreak = 0;
  /** Queued keys, the lane and seq of their live entry (other entries are stale), since when. */
  readonly #queued = new Map<string, { lane: Queue; seq: number; since: number }>();
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
    this.#resyncEvery = Math.max(1, options.resyncEvery ?? 8);
    this.#tokens = this.#burst;
    this.#tokensAt = this.#clock.now();
  }

  /** Queues `key` (no-op when already queued in the same lane or a more urgent one). */
  add(key: string, lane: Lane = "fresh"): void {
    if (this.#shutdown) return;
    if (this.#processing.has(key)) {
      const current = this.#dirty.get(key);
      if (current === undefined || rank(lane) < rank(current)) this.#dirty.set(key, lane);
      return;
    }
    const target: Queue = lane === "resync" ? "resync" : "urgent";
    const existing = this.#queued.get(key);
    if (existing && (existing.lane === "urgent" || target === "resync")) return;
    const seq = ++this.#seq;
    this.#queued.set(key, { lane: target, seq, since: existing?.since ?? this.#clock.now() });
    this.#lanes[target].push({ key, seq });
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

  /**
   * Waits for at least one key, then takes what else is queued, up to `max` (and the rate
   * limit allows), marking them in flight; empty once the queue shuts down.
   */
  async getBatch(max: number): Promise<string[]> {
    const first = await this.get();
    if (first === undefined) return [];
    const keys = [first];
    while (keys.length < max && this.#queued.size > 0 && !this.#shutdown) {
      const next = this.#take();
      if (next === undefined) break;
      keys.push(next);
    }
    return keys;
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

  /** The live entry at the front of a lane; stale ones (re-queued elsewhere, removed) are dropped. */
  #head(lane: Queue): Entry | undefined {
    const fifo = this.#lanes[lane];
    for (;;) {
      const entry = fifo.peek();
      if (!entry) return undefined;
      const live = this.#queued.get(entry.key);
      if (live && live.lane === lane && live.seq === entry.seq) return entry;
      fifo.shift();
    }
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
      const key = this.#take();
      if (key === undefined) return;
      (this.#waiters.shift() as (key: string | undefined) => void)(key);
    }
  }

  /**
   * The next key by lane and rate limit, marked in flight; undefined when none may go now (a
   * timer is set for when the rate limit allows one).
   */
  #take(): string | undefined {
    this.#refill();
    if (this.#tokens < 1) {
      if (this.#rateTimer === undefined) {
        const wait = Math.ceil((1 - this.#tokens) / this.#ratePerMs);
        this.#rateTimer = this.#clock.setTimer(() => {
          this.#rateTimer = undefined;
          this.#dispatch();
        }, wait);
      }
      return undefined;
    }
    const urgent = this.#head("urgent");
    const resync = this.#head("resync");
    const lane: Queue | undefined =
      urgent && (!resync || this.#urgentStreak < this.#resyncEvery - 1)
        ? "urgent"
        : resync
          ? "resync"
          : undefined;
    if (!lane) return undefined;
    this.#urgentStreak = lane === "urgent" && resync ? this.#urgentStreak + 1 : 0;
    const entry = this.#lanes[lane].shift() as Entry;
    this.#queued.delete(entry.key);
    this.#processing.add(entry.key);
    this.#tokens -= 1;
    return entry.key;
  }
}

function rank(lane: Lane): number {
  return lane === "fresh" ? 0 : lane === "retry" ? 1 : 2;
}
