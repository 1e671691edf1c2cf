/** Stable codes of {@link StartupError}, for scripts and tests to branch on. */
export const StartupErrorCode = {
  PortInUse: "DV_PORT_IN_USE",
  PostgresUnreachable: "DV_POSTGRES_UNREACHABLE",
  PostgresRejected: "DV_POSTGRES_REJECTED",
  /** The server is a replica (in recovery): it refuses writes, and this role must write. */
  PostgresReadOnly: "DV_POSTGRES_READ_ONLY",
  NatsUnreachable: "DV_NATS_UNREACHABLE",
  NatsServerMissing: "DV_NATS_SERVER_MISSING",
  NatsServerFailed: "DV_NATS_SERVER_FAILED",
  DataDirLocked: "DV_DATA_DIR_LOCKED",
} as const;
export type StartupErrorCode = (typeof StartupErrorCode)[keyof typeof StartupErrorCode];

/**
 * Thrown when a process cannot start because something outside it is wrong: a port is taken, a
 * dependency is unreachable or refuses us, a binary is missing. The message is one line saying
 * which; `hint` says how to fix it. The CLI prints both without a stack trace.
 */
export class StartupError extends Error {
  override readonly name = "StartupError";
  readonly code: StartupErrorCode;
  readonly hint: string;

  constructor(code: StartupErrorCode, message: string, hint: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.hint = hint;
  }
}

/** Thrown by a startup step when the process was asked to stop (a signal) while starting. */
export class StoppedError extends Error {
  override readonly name = "StoppedError";
  readonly code = "DV_STOPPED";

  constructor(options?: ErrorOptions) {
    super("stopped while starting", options);
  }
}
