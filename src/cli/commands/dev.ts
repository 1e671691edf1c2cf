import type { Command } from "commander";
import { loadConfig, systemSearchPath } from "../../config/index.js";
import { packageRoot } from "../../meta/index.js";
import { Lifecycle, StoppedError, stopOnSignals } from "../../lifecycle/index.js";
import { createLogger } from "../../observability/index.js";
import type { Logger } from "../../observability/index.js";
import { cliConfigPath, readCliConfig, setContext } from "../context.js";
import { configOverrides, type ProcessFlags } from "../flags.js";

/**
 * Saves the context "dev" (this API, the operator token, this NATS) in the CLI's config file, so
 * every `dv` command — `dv sim` and `dv tail` included — works against `npm run dev` at once; it
 * becomes current when no other context is.
 */
async function writeDevContext(
  server: string,
  token: string,
  nats: string,
  log: Logger,
): Promise<string> {
  const path = cliConfigPath();
  try {
    const before = await readCliConfig(path);
    const use = !before.currentContext || before.currentContext === "dev";
    await setContext({ name: "dev", server, token, nats }, { use });
    return [
      `  dv CLI     context "dev" saved in ${path}${use ? " (current)" : `; current is "${before.currentContext}": npx dv config use-context dev`}`,
      "  Try:  npx dv create tenant acme && npx dv config set-context dev --tenant acme",
      "        npx dv get tenants",
      "",
      "",
    ].join("\n");
  } catch (err) {
    log.warn({ err, path }, "could not save the dv CLI context");
    return `  dv CLI     could not save a context in ${path}; use DV_SERVER and DV_TOKEN\n\n`;
  }
}

/** Adds `dv dev`: the whole control plane in one process on embedded defaults. */
export function registerDev(program: Command): void {
  program
    .command("dev")
    .description(
      "run the whole control plane in one process: API, controllers and workers, with embedded PGlite and nats-server unless DATABASE_URL / NATS_URL are set",
    )
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .option("-p, --port <port>", "HTTP port (default: $DV_HTTP_PORT or 8080)")
    .addHelpText(
      "after",
      "\nExamples:\n  npm run dev\n  DATABASE_URL=postgres://localhost/dataverket dv dev --port 9090\n",
    )
    .action(async (flags: ProcessFlags) => {
      const config = loadConfig({ file: flags.config, overrides: configOverrides(flags) });
      // The control plane is loaded only by the commands that run it: every other dv command
      // starts in a fraction of the time.
      const { openTracing, startDev } = await import("../../app/index.js");
      const log = createLogger({
        level: config.log.level,
        service: "dv-dev",
        datacenterId: config.datacenterId,
      });
      // Signals are handled from the first moment, so Ctrl-C during startup also cleans up.
      const lifecycle = new Lifecycle(log);
      const stopped = stopOnSignals(lifecycle, log);
      await openTracing({ config, log, lifecycle, serviceName: "dataverket-dev" });
      try {
        const running = await startDev({
          config,
          log,
          lifecycle,
          repoRoot: packageRoot(),
          searchPath: systemSearchPath(),
        });
        process.stderr.write(running.banner);
        process.stderr.write(
          await writeDevContext(running.apiUrl, running.operatorToken, running.natsUrl, log),
        );
      } catch (err) {
        if (!(err instanceof StoppedError)) throw err;
      }
      await stopped;
    });
}
