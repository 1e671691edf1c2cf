export { IdempotencyKeyTakenError, IdempotencyStore, type StoredResponse } from "./idempotency.js";
export { type OutboxMessage, OutboxStore } from "./outbox.js";
