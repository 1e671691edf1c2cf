import type { ExitCode } from "./exit-codes.js";

/**
 * Thrown by a command to end `dv` with a one-line message and a specific exit code; the message
 * should say what to do next.
 */
export class CliError extends Error {
  override readonly name: string = "CliError";
  readonly code = "DV_CLI";
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

/**
 * Thrown by a command that already printed what went wrong (one line per failure, like `dv apply`
 * for each refused document): `dv` only exits with `exitCode`, printing nothing more.
 */
export class ReportedError extends CliError {
  override readonly name = "ReportedError";

  constructor(exitCode: ExitCode) {
    super("already reported", exitCode);
  }
}

/** Thrown when the API refused a request: its status and the problem's detail, kept apart. */
export class ApiError extends CliError {
  override readonly name = "ApiError";
  /** The HTTP status. */
  readonly status: number;
  /** The problem document's detail (it names the fields at fault), without the request. */
  readonly detail: string;

  constructor(
    message: string,
    exitCode: ExitCode,
    problem: { status: number; detail: string },
    options?: ErrorOptions,
  ) {
    super(message, exitCode, options);
    this.status = problem.status;
    this.detail = problem.detail;
  }
}
