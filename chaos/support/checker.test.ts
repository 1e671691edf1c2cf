import { describe, expect, it } from "vitest";
import { checkQueue } from "./checker.js";

describe("checkQueue", () => {
  it("accepts a history where every acknowledged operation was applied once", () => {
    const v = checkQueue({ attempted: ["a", "b"], acknowledged: ["a", "b"], applied: ["b", "a"] });
    expect(v).toMatchObject({ valid: true, lost: [], duplicated: [], unexpected: [], applied: 2 });
  });

  it("calls an acknowledged operation that was never applied lost", () => {
    const v = checkQueue({ attempted: ["a", "b"], acknowledged: ["a", "b"], applied: ["a"] });
    expect(v.lost).toEqual(["b"]);
    expect(v.valid).toBe(false);
  });

  it("calls an operation applied twice duplicated", () => {
    const v = checkQueue({ attempted: ["a"], acknowledged: ["a"], applied: ["a", "a"] });
    expect(v.duplicated).toEqual(["a"]);
    expect(v.valid).toBe(false);
  });

  it("calls an effect or acknowledgement of something never attempted unexpected", () => {
    const v = checkQueue({ attempted: ["a"], acknowledged: ["a", "z"], applied: ["a", "y"] });
    expect([...v.unexpected].sort()).toEqual(["y", "z"]);
    expect(v.valid).toBe(false);
  });

  it("allows an unacknowledged operation to be applied (recovered) or not", () => {
    const v = checkQueue({ attempted: ["a", "b", "c"], acknowledged: ["a"], applied: ["a", "b"] });
    expect(v).toMatchObject({ valid: true, recovered: ["b"], lost: [] });
  });
});
