import { isIPv6 } from "node:net";

/** Options of {@link RateLimiter}. */
export interface RateLimiterOptions {
  /** Requests one key may make per window. */
  readonly max: number;
  readonly windowMs: number;
  /** Keys remembered at most; the least recently started window is forgotten first. */
  readonly maxKeys?: number;
  /** The clock, in milliseconds. */
  readonly now?: () => number;
}

/** What {@link RateLimiter.take} decided. */
export type RateDecision =
  { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number };

/**
 * Fixed-window request budgets by key, in memory (one API replica's share): a key's window starts
 * with its first request after the previous window ended, and holds `max` requests.
 */
export class RateLimiter {
  readonly max: number;
  readonly windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #windows = new Map<string, { count: number; startedAt: number }>();

  constructor(options: RateLimiterOptions) {
    this.max = options.max;
    this.windowMs = options.windowMs;
    this.#maxKeys = options.maxKeys ?? 100_000;
    this.#now = options.now ?? Date.now;
  }

  /** Counts one request against `key`; refused (with the time to wait) once it is over `max`. */
  take(key: string): RateDecision {
    const now = this.#now();
    let window = this.#windows.get(key);
    if (!window || now >= window.startedAt + this.windowMs) {
      // A new window goes to the back of the map, so the oldest windows are forgotten first.
      this.#windows.delete(key);
      window = { count: 0, startedAt: now };
      this.#windows.set(key, window);
      if (this.#windows.size > this.#maxKeys) {
        this.#windows.delete(this.#windows.keys().next().value as string);
      }
    }
    window.count++;
    if (window.count <= this.max) return { allowed: true };
    return { allowed: false, retryAfterMs: window.startedAt + this.windowMs - now };
  }
}

/**
 * The budget key of a client address: an IPv4 address as it is, an IPv6 address by its /64 (one
 * host is given a whole /64, and could otherwise pick a fresh address for every request).
 */
export function addressKey(ip: string): string {
  if (!isIPv6(ip) || /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(ip)) return `address:${ip}`;
  const [head = "", tail = ""] = ip.toLowerCase().split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::")
    ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `address:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ""))
    .join(":")}::/64`;
}
