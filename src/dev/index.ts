export { type EmbeddedNats, type EmbeddedNatsOptions, startEmbeddedNats } from "./nats-server.js";
export { packageRoot } from "./paths.js";
export { freePort, portIsFree } from "./ports.js";
