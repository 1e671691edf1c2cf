export { StartupError, StartupErrorCode, StoppedError } from "./errors.js";
export { Lifecycle, type Stoppable, stopOnSignals } from "./lifecycle.js";
