export { type PlatformObject, PlatformStore, stalledOf } from "./store.js";
