export { type Clock, realClock, VirtualClock } from "./clock.js";
export {
  type BatchReconciler,
  Controller,
  type PassSettled,
  type ControllerOptions,
  type ReconcileResult,
  type Reconciler,
  resetControllerMetrics,
  TerminalError,
} from "./controller.js";
export { type Lane, WorkQueue, type WorkQueueOptions } from "./queue.js";
export {
  type LeaseGrant,
  LeaseManager,
  type LeaseManagerOptions,
  type LeasePort,
} from "./leases.js";
export { keyId, shardOf } from "./sharding.js";
export {
  type ManagedController,
  Manager,
  type ManagerOptions,
  resetManagerMetrics,
  type ResyncPort,
  type Source,
} from "./manager.js";
export { listenSource, SITE_EVENT_CHANNEL, siteEventSource } from "./sources.js";
