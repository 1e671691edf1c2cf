import type { Tx } from "../db/index.js";
import type { WorkerService } from "../messaging/index.js";

/** One operation a worker asks its driver to carry out. */
export interface DriverRequest {
  readonly service: WorkerService;
  readonly operation: "provision" | "update" | "delete" | "observe";
  readonly resourceKind: string;
  readonly resourceId: string;
  readonly generation: number;
  readonly step: string;
  /** The command's payload (without the common fields). */
  readonly data: Readonly<Record<string, unknown>>;
  readonly messageId: string;
  readonly datacenterId: string | null;
}

/** Reports progress of long work: keeps the delivery alive and tells the task. */
export type ProgressReporter = (percent: number, message: string) => Promise<void>;

/**
 * A domain service's driver: how Nett talks to switches, Maskin to server BMCs, and so on.
 * `prepare` does the slow part, reports progress, and throws when the device refuses; `apply`
 * makes the effect and returns the fields of the event that announces it. `apply` runs in the
 * transaction that also records the message in the inbox, so an effect and its record commit
 * together; it must only use that transaction (on an embedded database there is no other).
 */
export interface Driver {
  prepare(request: DriverRequest, progress: ProgressReporter): Promise<void>;
  apply(tx: Tx, request: DriverRequest): Promise<Record<string, unknown>>;
  /**
   * The effects of several commands, in their order, in one transaction: what `apply` of each
   * one after the other would make and answer, in as few statements as the driver can. Optional;
   * without it the worker applies them one by one.
   */
  applyMany?(tx: Tx, requests: readonly DriverRequest[]): Promise<Record<string, unknown>[]>;
  /**
   * Whether the task's `started` may be recorded with the effect, in the one transaction of its
   * batch, after `prepare`: true when `prepare` is quick and does nothing that a task cancelled
   * meanwhile should not have done. Otherwise (the default) the worker records `started` first
   * and prepares only a task that has not ended.
   */
  startsWithEffect?(request: DriverRequest): boolean;
}

/** Thrown by a driver for a failure worth retrying (a device timed out, a lock was busy). */
export class TransientDriverError extends Error {
  override readonly name = "TransientDriverError";
  readonly code = "DV_DRIVER_TRANSIENT";
}

/** Thrown by a driver for a failure no retry will fix (the request is impossible, the device refuses). */
export class PermanentDriverError extends Error {
  override readonly name = "PermanentDriverError";
  readonly code = "DV_DRIVER_PERMANENT";
}
