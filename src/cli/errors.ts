import type { ExitCode } from "./exit-codes.js";

/**
 * Thrown by a command to end `dv` with a one-line message and a specific exit code; the message
 * should say what to do next.
 */
export class CliError extends Error {
  override readonly name = "CliError";
  readonly code = "DV_CLI";
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
  }
}
