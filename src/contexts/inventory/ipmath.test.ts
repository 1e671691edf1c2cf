import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buddy,
  carve,
  formatPrefix,
  overlaps,
  parent,
  parsePrefix,
  type Prefix,
  PrefixError,
  size,
} from "./ipmath.js";

const prefixArb = (family: 4 | 6): fc.Arbitrary<Prefix> => {
  const bits = family === 4 ? 32 : 128;
  return fc
    .tuple(
      fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n }),
      fc.integer({ min: 1, max: bits }),
    )
    .map(([address, length]) => ({
      family,
      length,
      network: (address >> BigInt(bits - length)) << BigInt(bits - length),
    }));
};

describe("ipmath", () => {
  it("parses and formats like PostgreSQL's cidr", () => {
    expect(formatPrefix(parsePrefix("10.20.0.0/16"))).toBe("10.20.0.0/16");
    expect(formatPrefix(parsePrefix("2001:db8::/48"))).toBe("2001:db8::/48");
    expect(formatPrefix(parsePrefix("2001:0db8:0000:0000:0001:0000:0000:0000/80"))).toBe(
      "2001:db8:0:0:1::/80",
    );
    expect(formatPrefix(parsePrefix("::/0"))).toBe("::/0");
  });

  it("refuses host bits and malformed input with a reason", () => {
    expect(() => parsePrefix("10.0.0.1/24")).toThrow("did you mean 10.0.0.0/24");
    expect(() => parsePrefix("10.0.0.0")).toThrow(PrefixError);
    expect(() => parsePrefix("10.0.0.256/24")).toThrow(PrefixError);
    expect(() => parsePrefix("10.0.0.0/33")).toThrow("at most 32");
  });

  for (const family of [4, 6] as const) {
    it(`round-trips every IPv${family} prefix through text`, () => {
      fc.assert(
        fc.property(prefixArb(family), (p) => {
          expect(parsePrefix(formatPrefix(p))).toEqual(p);
        }),
      );
    });

    it(`keeps buddies disjoint and inside their parent (IPv${family})`, () => {
      fc.assert(
        fc.property(prefixArb(family), (p) => {
          const b = buddy(p);
          expect(buddy(b)).toEqual(p);
          expect(overlaps(p, b)).toBe(false);
          expect(parent(p)).toEqual(parent(b));
          expect(size(parent(p))).toBe(size(p) * 2n);
        }),
      );
    });

    it(`carves exactly the block: allocation plus remainders cover it without overlap (IPv${family})`, () => {
      fc.assert(
        fc.property(prefixArb(family), fc.integer({ min: 0, max: 24 }), (block, extra) => {
          const bits = family === 4 ? 32 : 128;
          const length = Math.min(bits, block.length + extra);
          const { allocated, remainders } = carve(block, length);
          const pieces = [allocated, ...remainders];
          expect(allocated.length).toBe(length);
          expect(pieces.reduce((sum, p) => sum + size(p), 0n)).toBe(size(block));
          for (let i = 0; i < pieces.length; i++) {
            for (let j = i + 1; j < pieces.length; j++)
              expect(overlaps(pieces[i] as Prefix, pieces[j] as Prefix)).toBe(false);
          }
        }),
      );
    });
  }
});
