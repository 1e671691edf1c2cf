import { v7 } from "uuid";

/** Generates ids; injected so tests can make them predictable. */
export type IdGenerator = () => string;

/** Time-ordered UUIDs (v7): new rows land at the end of id indexes and pages sort by creation. */
export const newId: IdGenerator = () => v7();
