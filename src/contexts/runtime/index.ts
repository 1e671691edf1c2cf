export {
  DEAD_LETTER_STATES,
  type DeadLetter,
  type DeadLetterState,
  DeadLetterStore,
  type NewDeadLetter,
} from "./dead-letters.js";
export { IdempotencyKeyTakenError, IdempotencyStore, type StoredResponse } from "./idempotency.js";
export { type Attempt, InboxStore, type Outcome } from "./inbox.js";
export {
  OUTBOX_CHANNEL,
  type OutboxMessage,
  OutboxStore,
  type PendingMessage,
  type PublishOutcome,
} from "./outbox.js";
export { FencedError, type Grant, LeaseStore } from "./leases.js";
export { registerDeadLetterMetrics, registerShardMetrics } from "./metrics.js";
export { type Backup, BackupStore, type NewRestore, type Restore } from "./backups.js";
export { SigningKeyStore } from "./signing-keys.js";
