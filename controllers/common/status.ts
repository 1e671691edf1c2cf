import { sameJson } from "../../src/kernel/index.js";

/** A condition as Kubernetes API conventions and kstatus define them. */
export interface Condition {
  readonly type: "Ready" | "Reconciling" | "Stalled";
  readonly status: "True" | "False" | "Unknown";
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration: number;
}

/** What a step of a resource's workflow is doing, in its status. */
export interface StepRecord {
  /** The command id (also its JetStream message id). */
  readonly command: string;
  readonly service: string;
  readonly action: string;
  readonly generation: number;
  /** Bumped to send the same step again as a new command (drift correction). */
  readonly attempt: number;
  readonly dispatchedAt: string;
  /** `stale`: it was done but must be done again (drift); the next pass sends it anew. */
  readonly state: "pending" | "done" | "failed" | "stale";
  readonly result?: Record<string, unknown>;
  readonly error?: string;
}

/** The status every tenant resource keeps. Kinds add their observed fields. */
export interface ResourceStatus {
  conditions: Condition[];
  steps: Record<string, StepRecord>;
  [field: string]: unknown;
}

/** Reads the status of a resource, tolerating an empty or older shape. */
export function readStatus(raw: Record<string, unknown>): ResourceStatus {
  return {
    ...raw,
    conditions: Array.isArray(raw.conditions) ? (raw.conditions as Condition[]) : [],
    steps:
      raw.steps && typeof raw.steps === "object"
        ? { ...(raw.steps as Record<string, StepRecord>) }
        : {},
  };
}

/** The summary a pass computes; turned into kstatus conditions by {@link conditionsFor}. */
export type Summary =
  | { readonly phase: "ready"; readonly message: string }
  | { readonly phase: "reconciling"; readonly reason: string; readonly message: string }
  | { readonly phase: "stalled"; readonly reason: string; readonly message: string };

/**
 * Conditions for a summary: `Ready` always; `Reconciling` only while true; `Stalled` only while
 * true — so Flux and Argo CD see progress and failure, never a silent timeout. Transition times
 * move only when a condition's status changes.
 */
export function conditionsFor(
  summary: Summary,
  previous: readonly Condition[],
  generation: number,
  now: Date,
): Condition[] {
  const at = now.toISOString();
  const keep = (
    type: Condition["type"],
    status: Condition["status"],
    reason: string,
    message: string,
  ): Condition => {
    const before = previous.find((c) => c.type === type);
    return {
      type,
      status,
      reason,
      message,
      lastTransitionTime: before && before.status === status ? before.lastTransitionTime : at,
      observedGeneration: generation,
    };
  };
  switch (summary.phase) {
    case "ready":
      return [keep("Ready", "True", "Ready", summary.message)];
    case "reconciling":
      return [
        keep("Ready", "False", summary.reason, summary.message),
        keep("Reconciling", "True", summary.reason, summary.message),
      ];
    case "stalled":
      return [
        keep("Ready", "False", summary.reason, summary.message),
        keep("Stalled", "True", summary.reason, summary.message),
      ];
  }
}

/**
 * Whether a status computed now equals the one stored ("did anything change"), whatever order
 * the database returned its keys in.
 */
export function sameStatus(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return sameJson(a, b);
}
