// The checker of a queue-like history, after Jepsen's total-queue checker: which operations were
// attempted, which the system acknowledged, and which effects were applied (a multiset: one entry
// per application). An acknowledged operation never applied is lost; one applied twice is
// duplicated; an effect of nothing attempted is unexpected. An operation attempted but not
// acknowledged (the client saw an error or a timeout) may or may not have been applied: when it
// was, it is recovered, which is allowed.
export interface QueueHistory {
  readonly attempted: Iterable<string>;
  readonly acknowledged: Iterable<string>;
  readonly applied: Iterable<string>;
}

export interface QueueVerdict {
  readonly attempted: number;
  readonly acknowledged: number;
  /** Distinct operations applied at least once. */
  readonly applied: number;
  readonly lost: readonly string[];
  readonly duplicated: readonly string[];
  readonly unexpected: readonly string[];
  /** Attempted, not acknowledged, applied anyway (exactly once). */
  readonly recovered: readonly string[];
  /** True when nothing was lost, duplicated or unexpected. */
  readonly valid: boolean;
}

export function checkQueue(history: QueueHistory): QueueVerdict {
  const attempted = new Set(history.attempted);
  const acknowledged = new Set(history.acknowledged);
  const times = new Map<string, number>();
  for (const op of history.applied) times.set(op, (times.get(op) ?? 0) + 1);
  const lost = [...acknowledged].filter((op) => !times.has(op));
  const duplicated = [...times].filter(([, n]) => n > 1).map(([op]) => op);
  // An acknowledgement of something never attempted is as wrong as an effect of it.
  const unexpected = [
    ...[...times.keys()].filter((op) => !attempted.has(op)),
    ...[...acknowledged].filter((op) => !attempted.has(op)),
  ];
  const recovered = [...times.keys()].filter(
    (op) => attempted.has(op) && !acknowledged.has(op) && times.get(op) === 1,
  );
  return {
    attempted: attempted.size,
    acknowledged: acknowledged.size,
    applied: times.size,
    lost,
    duplicated,
    unexpected: [...new Set(unexpected)],
    recovered,
    valid: lost.length === 0 && duplicated.length === 0 && unexpected.length === 0,
  };
}
