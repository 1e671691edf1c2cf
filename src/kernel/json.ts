import { isDeepStrictEqual } from "node:util";

/**
 * Whether two JSON values are the same value: object keys in any order (PostgreSQL's jsonb
 * stores them in an order of its own), properties holding `undefined` as if absent (JSON drops
 * them).
 */
export function sameJson(a: unknown, b: unknown): boolean {
  const plain = (v: unknown): unknown => (v === undefined ? v : JSON.parse(JSON.stringify(v)));
  return isDeepStrictEqual(plain(a), plain(b));
}
