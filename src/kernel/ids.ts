import { v7 } from "uuid";

/** Generates ids; injected so tests can make them predictable. */
export type IdGenerator = () => string;

/** Time-ordered UUIDs (v7): new rows land at the end of id indexes and pages sort by creation. */
export const newId: IdGenerator = () => v7();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID in its canonical text form (what a `uuid` column takes). */
export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}
