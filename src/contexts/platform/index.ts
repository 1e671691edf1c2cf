export { type PlatformObject, PlatformStore } from "./store.js";
