import { describe, expect, it } from "vitest";
import { newRequestId } from "./request-id.js";

describe("request ids", () => {
  it("are UUIDs v7 of the time they were made, all different", () => {
    const now = Date.parse("2026-12-05T09:00:00.123Z");
    const ids = Array.from({ length: 2000 }, () => newRequestId(now));
    for (const id of ids)
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    expect(Number.parseInt(ids[0]!.replace("-", "").slice(0, 12), 16)).toBe(now);
    // Every variant digit turns up: its bits are random, not fixed.
    expect(new Set(ids.map((id) => id[19])).size).toBe(4);
  });
});
