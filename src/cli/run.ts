import { CommanderError } from "commander";
import { ExitCode } from "./exit-codes.js";
import { buildProgram } from "./program.js";
import { renderError } from "./render-error.js";

/**
 * Runs `dv` with the given arguments (without `node` and the script) and resolves with the exit
 * code. Errors are printed to stderr as one readable line each.
 */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: "user" });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed help, the version, or the usage error.
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    const verbose = program.opts<{ verbose?: boolean }>().verbose === true;
    const rendered = renderError(err, verbose);
    process.stderr.write(rendered.text);
    return rendered.exitCode;
  }
}
