export { type Device, type Effect, type Fault, SimulatorStore } from "./store.js";
