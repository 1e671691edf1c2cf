export { type OutboxMessage, OutboxStore } from "./outbox.js";
