export { BUCKET_CAPACITY, BucketReconciler } from "./bucket/reconciler.js";
export { ClusterReconciler } from "./cluster/reconciler.js";
export { Allocator } from "./common/allocator.js";
export { commandFor, commandId, type StepSpec } from "./common/commands.js";
export { commandsToLookUp, foldOutcomes } from "./common/outcomes.js";
export { type KindPlan, type KindRules, Pass, type PassContext } from "./common/pass.js";
export type {
  AllocationPort,
  Command,
  CommandPort,
  FencePort,
  HeldServer,
  Holdings,
  Need,
  Outcome,
  Owner,
  ReconcilePorts,
  ResourcePort,
  StatusWrite,
  TaskMove,
  TaskPort,
  Unit,
  UnitOfWork,
} from "./common/ports.js";
export { postgresPorts, type PostgresPortStores } from "./common/postgres.js";
export {
  type ReconcilerDeps,
  ResourceReconciler,
  resetReconcilerMetrics,
} from "./common/resource-reconciler.js";
export {
  type Condition,
  conditionsFor,
  type ResourceStatus,
  readStatus,
  type StepRecord,
  type Summary,
} from "./common/status.js";
export { NetworkReconciler } from "./network/reconciler.js";
export { ServerReconciler } from "./server/reconciler.js";
export {
  APPLY_ORDER,
  type PlatformObjectInput,
  PlatformSync,
  type PlatformSyncStores,
  type SyncResult,
} from "./platform/sync.js";
export {
  type PlatformDirectorySummary,
  syncPlatformDirectory,
} from "./platform/apply-directory.js";
export {
  KUBE_LEASE_DEFAULTS,
  KubeLeaseElector,
  type KubeLeaseTimings,
} from "./platform/kube-lease.js";
export { PLATFORM_SHARD, type PlatformLeasePort, PlatformLeadership } from "./platform/leader.js";
export {
  PLATFORM_LEASE_NAME,
  type PlatformLeaseSettings,
  PlatformManager,
  type PlatformManagerOptions,
  startPlatformManager,
} from "./platform/manager.js";
export { PlatformReconciler } from "./platform/reconciler.js";
export {
  DirectoryPlatformSource,
  KubernetesPlatformSource,
  PLATFORM_FINALIZER,
  type PlatformObject,
  type PlatformSource,
  platformKey,
} from "./platform/source.js";
