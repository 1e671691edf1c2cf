export { timestamps, timestamptz, versionColumn } from "./columns.js";
export type { Database, Dialect, IsolationLevel, Orm, Tx, Unlisten } from "./database.js";
export {
  BackupError,
  BackupErrorCode,
  constraintOf,
  DatabaseError,
  MigrationError,
  SqlState,
  isDatabaseUnavailable,
  isOutage,
  isPoolTimeout,
  sqlStateOf,
} from "./errors.js";
export {
  OWNED_SCHEMAS,
  type PgToolOptions,
  restorePgDump,
  SNAPSHOT_EXTENSIONS,
  type Snapshot,
  type SnapshotFormat,
  type SnapshotOptions,
  type SnapshotQuery,
  snapshotFormatOf,
} from "./backup.js";
export {
  type MigrationStatus,
  migrationStatus,
  migrationsFolder,
  runMigrations,
} from "./migrations.js";
export { type OpenPgliteOptions, openPglite, restorePglite } from "./pglite.js";
export { type ConnectPostgresOptions, connectPostgres, postgresStartupError } from "./postgres.js";
export { ContextRole } from "./context-roles.js";
export {
  actAs,
  asRole,
  inTransaction,
  pipelined,
  type TransactionOptions,
  withSavepoint,
} from "./tx.js";
export { anyUuid, ContextStore, mapUniqueViolation, rowsOf } from "./store.js";
export { executeNamed, NamedRowRead } from "./named.js";
export { labelCondition } from "./labels.js";
export { registerPoolMetrics } from "./metrics.js";
export { inRecovery } from "./role.js";
