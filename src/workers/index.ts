export {
  type Driver,
  type DriverRequest,
  PermanentDriverError,
  type ProgressReporter,
  TransientDriverError,
} from "./driver.js";
export { SimulatedDriver, type SimulatedDriverOptions } from "./simulated.js";
export { Worker, type WorkerOptions } from "./worker.js";
export {
  askSimulator,
  serveSimulatorControl,
  type SimulatorControlOptions,
} from "./sim-control.js";
