import type { Database } from "./database.js";

/**
 * Whether the server is a replica (a standby in recovery, `pg_is_in_recovery()`): it answers
 * reads and refuses every write. Always false for the embedded PGlite.
 */
export async function inRecovery(db: Database): Promise<boolean> {
  const [row] = await db.query<{ replica: boolean }>("SELECT pg_is_in_recovery() AS replica");
  return row?.replica === true;
}
