export { BUCKET_CAPACITY, BucketReconciler } from "./bucket/reconciler.js";
export { ClusterReconciler } from "./cluster/reconciler.js";
export { CommandOutcomes, type Outcome } from "./common/outcomes.js";
export {
  type KindPlan,
  type ReconcilerDeps,
  ResourceReconciler,
  resetReconcilerMetrics,
  type StepSpec,
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
  type SyncResult,
} from "./platform/sync.js";
export {
  KUBE_LEASE_DEFAULTS,
  KubeLeaseElector,
  type KubeLeaseTimings,
} from "./platform/kube-lease.js";
export { PLATFORM_SHARD, PlatformLeadership } from "./platform/leader.js";
export { PlatformReconciler } from "./platform/reconciler.js";
export {
  DirectoryPlatformSource,
  KubernetesPlatformSource,
  PLATFORM_FINALIZER,
  type PlatformObject,
  type PlatformSource,
  platformKey,
} from "./platform/source.js";
