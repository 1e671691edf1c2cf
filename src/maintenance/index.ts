export { type BackupRequest, BackupService, type RunningBackup } from "./backup.js";
export {
  type RestoreOptions,
  type RestoreResult,
  type RestoreTarget,
  restoreDatabase,
} from "./restore.js";
export { type DatabaseStatus, databaseStatus, type ReplicaStatus } from "./status.js";
