export {
  type DependencyOptions,
  openDatabase,
  openLeaseDatabase,
  openNats,
  openTracing,
} from "./dependencies.js";
export { type RunningDev, type StartDevOptions, startDev } from "./dev.js";
export {
  startAdvisoryProcessor,
  type StartAdvisoryProcessorOptions,
  startRelay,
  type StartRelayOptions,
  startSimulatorControl,
  type StartSimulatorControlOptions,
  startWorker,
  type StartWorkerOptions,
  type WorkerSettings,
} from "./messaging.js";
export { createServices, type Services } from "./services.js";
export {
  type ControlPlane,
  startControllers,
  type StartControllersOptions,
} from "./controllers.js";
export type { RoleOptions } from "./process.js";
export { type RunningRole, startApiRole, startControllerRole, startWorkerRole } from "./roles.js";
