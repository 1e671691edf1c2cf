export { type Device, type Effect, EVERY_RESOURCE, type Fault, SimulatorStore } from "./store.js";
