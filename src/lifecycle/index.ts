export { StartupError, StartupErrorCode } from "./errors.js";
export { Lifecycle, type Stoppable, stopOnSignals } from "./lifecycle.js";
