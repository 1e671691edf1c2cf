import { describe, expect, it } from "vitest";
import { addressKey, RateLimiter } from "./rate-limit.js";

describe("RateLimiter", () => {
  it("allows max requests per window and key, says how long to wait, and starts afresh after", () => {
    let now = 1_000;
    const limiter = new RateLimiter({ max: 2, windowMs: 1_000, now: () => now });
    expect(limiter.take("tenant:a")).toEqual({ allowed: true });
    now += 400;
    expect(limiter.take("tenant:a")).toEqual({ allowed: true });
    expect(limiter.take("tenant:a")).toEqual({ allowed: false, retryAfterMs: 600 });
    // Another key has a budget of its own.
    expect(limiter.take("tenant:b")).toEqual({ allowed: true });
    now += 600;
    expect(limiter.take("tenant:a")).toEqual({ allowed: true });
  });

  it("forgets the oldest windows first when it holds too many keys", () => {
    const now = 0;
    const limiter = new RateLimiter({ max: 1, windowMs: 1_000, maxKeys: 2, now: () => now });
    limiter.take("a");
    limiter.take("b");
    expect(limiter.take("b").allowed).toBe(false);
    limiter.take("c");
    // "a" was forgotten (a fresh budget), "b" was not.
    expect(limiter.take("a").allowed).toBe(true);
    expect(limiter.take("c").allowed).toBe(false);
  });
});

describe("addressKey", () => {
  it("keys IPv4 by address and IPv6 by its /64, however it is written", () => {
    expect(addressKey("192.0.2.7")).toBe("address:192.0.2.7");
    expect(addressKey("::ffff:192.0.2.7")).toBe("address:::ffff:192.0.2.7");
    expect(addressKey("2001:db8:0:1::1")).toBe("address:2001:db8:0:1::/64");
    expect(addressKey("2001:0db8:0000:0001:ffff:1:2:3")).toBe("address:2001:db8:0:1::/64");
    expect(addressKey("2001:db8::1")).toBe("address:2001:db8:0:0::/64");
    expect(addressKey("::1")).toBe("address:0:0:0:0::/64");
  });
});
