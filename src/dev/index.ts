export { type EmbeddedNats, type EmbeddedNatsOptions, startEmbeddedNats } from "./nats-server.js";
export { freePort, portIsFree } from "./ports.js";
