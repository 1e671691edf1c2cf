import { ConfigError, ConfigFileError } from "../config/index.js";
import { StartupError } from "../lifecycle/index.js";
import { PlatformDocumentError } from "../platform-config/index.js";
import { CliError, ReportedError } from "./errors.js";
import { ExitCode } from "./exit-codes.js";

/** What `dv` prints to stderr for a failed command, and the status it exits with. */
export interface RenderedError {
  readonly text: string;
  readonly exitCode: ExitCode;
}

/**
 * Turns any error into the text `dv` prints: one line for errors we know (a bad configuration
 * prints one line per problem), and the stack trace only when `verbose` is set.
 */
export function renderError(err: unknown, verbose: boolean): RenderedError {
  if (err instanceof ConfigError) {
    const lines = err.problems.map((p) => `  ${p.source}: ${p.message}`);
    return {
      text: `dv: error: invalid configuration:\n${lines.join("\n")}\n`,
      exitCode: ExitCode.Usage,
    };
  }
  if (err instanceof ConfigFileError || err instanceof PlatformDocumentError) {
    return { text: `dv: error: ${err.message}\n`, exitCode: ExitCode.Usage };
  }
  if (err instanceof StartupError) {
    const stack = verbose && err.cause instanceof Error ? `\n${err.cause.stack ?? ""}` : "";
    return {
      text: `dv: error: ${err.message} (${err.hint})${stack}\n`,
      exitCode: ExitCode.Unavailable,
    };
  }
  if (err instanceof ReportedError) return { text: "", exitCode: err.exitCode };
  if (err instanceof CliError) {
    return { text: `dv: error: ${err.message}\n`, exitCode: err.exitCode };
  }
  const message = err instanceof Error ? err.message : String(err);
  const stack = verbose && err instanceof Error ? `\n${err.stack ?? ""}` : "";
  const tip = verbose ? "" : " (run with --verbose for details)";
  return { text: `dv: error: ${message}${tip}${stack}\n`, exitCode: ExitCode.Failed };
}
