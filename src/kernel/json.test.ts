import { describe, expect, it } from "vitest";
import { sameJson } from "./json.js";

describe("sameJson", () => {
  it("is true for the same value with keys in another order, as jsonb returns them", () => {
    const written = {
      vlanId: 100,
      cidr: "10.0.0.0/28",
      conditions: [{ type: "Ready", status: "True" }],
    };
    const read = {
      cidr: "10.0.0.0/28",
      vlanId: 100,
      conditions: [{ status: "True", type: "Ready" }],
    };
    expect(JSON.stringify(written)).not.toBe(JSON.stringify(read));
    expect(sameJson(written, read)).toBe(true);
  });

  it("treats a property holding undefined as absent, and tells real differences apart", () => {
    expect(sameJson({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(sameJson({ a: 1 }, { a: 2 })).toBe(false);
    expect(sameJson({ list: [1, 2] }, { list: [2, 1] })).toBe(false);
    expect(sameJson({ a: { b: 1 } }, { a: { b: 1, c: 0 } })).toBe(false);
  });
});
