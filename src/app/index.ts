export { type DependencyOptions, openDatabase, openNats } from "./dependencies.js";
export { type RunningDev, type StartDevOptions, startDev } from "./dev.js";
