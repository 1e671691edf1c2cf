/**
 * The PostgreSQL role of each bounded context. A context's operations run as its role, which may
 * read and write that context's schema and nothing else, so a boundary violation is refused by
 * the database, not just by review.
 */
export const ContextRole = {
  tenancy: "dv_tenancy",
  inventory: "dv_inventory",
  task: "dv_task",
  audit: "dv_audit",
  platform: "dv_platform",
  runtime: "dv_runtime",
  /** Not a Sentral context: the simulated domain services' own store. */
  simulator: "dv_simulator",
} as const;
export type ContextRole = (typeof ContextRole)[keyof typeof ContextRole];
