import { randomFillSync } from "node:crypto";

// Random digits are drawn from the system a few kilobytes at a time and turned into hex once:
// asking it for the bytes of each id (as the uuid package does, 16 at a time) cost more than the
// rest of answering a cached read.
const POOL_BYTES = 4096;
const ID_DIGITS = 20;
const VARIANT = "89ab";
const pool = Buffer.alloc(POOL_BYTES);
let digits = "";
let offset = 0;

/** The time part of the last id, for as long as the millisecond lasts. */
let lastMs = -1;
let timePart = "";

/**
 * A new request id: a UUID v7 (RFC 9562), time-ordered by its millisecond prefix, the other 74
 * bits random. The correlation id of a request that brings none of its own.
 */
export function newRequestId(now = Date.now()): string {
  if (offset + ID_DIGITS > digits.length) {
    randomFillSync(pool);
    digits = pool.toString("hex");
    offset = 0;
  }
  if (now !== lastMs) {
    const hex = now.toString(16).padStart(12, "0");
    timePart = `${hex.slice(0, 8)}-${hex.slice(8)}-7`;
    lastMs = now;
  }
  const o = offset;
  offset += ID_DIGITS;
  // 20 random hex digits: the first picks the variant (10xx), the fifth is dropped.
  const variant = VARIANT[(pool[o >> 1] ?? 0) >> 6];
  return `${timePart}${digits.slice(o + 1, o + 4)}-${variant}${digits.slice(o + 5, o + 8)}-${digits.slice(o + 8, o + ID_DIGITS)}`;
}
