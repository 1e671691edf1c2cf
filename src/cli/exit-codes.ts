/** Exit codes of `dv`, documented in docs/operations.md (Exit codes of `dv`); scripts may rely on them. */
export const ExitCode = {
  /** The command did what was asked. */
  Ok: 0,
  /** The command ran but the operation failed (a task ended failed, a request was refused). */
  Failed: 1,
  /** Wrong usage or invalid configuration: nothing was done. */
  Usage: 2,
  /** A dependency could not be reached or a port was taken: nothing was started. */
  Unavailable: 3,
  /** The named resource does not exist. */
  NotFound: 4,
  /** A conflict: stale version, exhausted pool, or a name already taken. */
  Conflict: 5,
  /** The task followed (`dv tasks watch`, `--wait`) was cancelled. */
  Cancelled: 6,
  /** Interrupted by Ctrl-C. */
  Interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
