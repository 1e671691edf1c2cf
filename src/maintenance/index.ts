export { type BackupRequest, BackupService, type RunningBackup } from "./backup.js";
export {
  BACKUP_CONTEXTS,
  type BackupContext,
  checkInvariants,
  dataAsOf,
  INVARIANTS,
  type InvariantResult,
  tableCounts,
} from "./facts.js";
export { registerDatabaseMetrics } from "./metrics.js";
export {
  BackupManifest,
  digestOf,
  MANIFEST_FILE,
  manifestOf,
  readBackup,
  snapshotFileName,
  type VerifiedBackup,
} from "./manifest.js";
export {
  type RestoreOptions,
  type RestoreResult,
  type RestoreTarget,
  restoreDatabase,
} from "./restore.js";
export { type ReplicaStatus } from "./recovery.js";
export { type DatabaseStatus, databaseStatus } from "./status.js";
