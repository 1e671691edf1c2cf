import type { Command } from "commander";
import { dump } from "js-yaml";
import {
  type CliContext,
  cliConfigPath,
  readCliConfig,
  setContext,
  writeCliConfig,
} from "../context.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { table } from "../output.js";

interface ContextFlags {
  server?: string;
  nats?: string;
  token?: string;
  tenant?: string;
  project?: string;
  environment?: string;
  use?: boolean;
}

/** Adds `dv config view|get-contexts|set-context|use-context`: the CLI's contexts. */
export function registerConfig(program: Command): void {
  const config = program
    .command("config")
    .description(
      "contexts of the CLI, like kubeconfig's: server, token, and the tenant, project and environment commands default to",
    )
    .addHelpText(
      "after",
      `\nThe file: $DV_CLI_CONFIG, else $XDG_CONFIG_HOME/dataverket/config.yaml, else ~/.config/dataverket/config.yaml.\nnpm run dev writes a context named "dev" with an operator token and makes it current.\n`,
    );

  config
    .command("view")
    .description("print the file (tokens hidden unless --raw)")
    .option("--raw", "show tokens")
    .addHelpText("after", "\nExample:\n  npx dv config view\n")
    .action(async (flags: { raw?: boolean }) => {
      const file = await readCliConfig();
      const shown = {
        ...file,
        contexts: file.contexts.map((c) =>
          c.token && !flags.raw ? { ...c, token: "REDACTED" } : c,
        ),
      };
      process.stdout.write(`# ${cliConfigPath()}\n${dump(shown, { noRefs: true })}`);
    });

  config
    .command("get-contexts")
    .description("list the contexts; * marks the current one")
    .addHelpText("after", "\nExample:\n  npx dv config get-contexts\n")
    .action(async () => {
      const file = await readCliConfig();
      process.stdout.write(
        table(
          ["current", "name", "server", "nats", "tenant", "project", "environment"],
          file.contexts.map((c) => [
            c.name === file.currentContext ? "*" : "",
            c.name,
            c.server ?? "",
            c.nats ?? "",
            c.tenant ?? "",
            c.project ?? "",
            c.environment ?? "",
          ]),
        ),
      );
    });

  config
    .command("set-context")
    .description("add a context or change some of its fields")
    .argument("<name>", "the context's name")
    .option("--server <url>", "the Dataverket API")
    .option("--nats <urls>", "NATS server URLs of dv sim and dv tail, comma-separated")
    .option("--token <jwt>", "bearer token")
    .option("--tenant <name>", "default tenant")
    .option("--project <name>", "default project")
    .option("--environment <name>", "default environment")
    .option("--use", "make it the current context")
    .addHelpText(
      "after",
      "\nExample:\n  npx dv config set-context dev --tenant acme --project shop --environment prod --use\n",
    )
    .action(async (name: string, flags: ContextFlags) => {
      const fields: Omit<CliContext, "name"> = {
        ...(flags.server !== undefined ? { server: flags.server } : {}),
        ...(flags.nats !== undefined ? { nats: flags.nats } : {}),
        ...(flags.token !== undefined ? { token: flags.token } : {}),
        ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}),
        ...(flags.project !== undefined ? { project: flags.project } : {}),
        ...(flags.environment !== undefined ? { environment: flags.environment } : {}),
      };
      let next;
      try {
        next = await setContext({ name, ...fields }, { use: Boolean(flags.use) });
      } catch (err) {
        if (err instanceof CliError) throw err;
        const issue = (err as { issues?: { path: PropertyKey[]; message: string }[] }).issues?.[0];
        throw new CliError(
          issue ? `--${String(issue.path[0])}: ${issue.message}` : String(err),
          ExitCode.Usage,
        );
      }
      process.stderr.write(
        `context "${name}" saved${next.currentContext === name ? " (current)" : ""} in ${cliConfigPath()}\n`,
      );
    });

  config
    .command("use-context")
    .description("make a context the current one")
    .argument("<name>", "the context's name")
    .addHelpText("after", "\nExample:\n  npx dv config use-context dev\n")
    .action(async (name: string) => {
      const file = await readCliConfig();
      if (!file.contexts.some((c) => c.name === name))
        throw new CliError(
          `no context "${name}" in ${cliConfigPath()}; see dv config get-contexts`,
          ExitCode.NotFound,
        );
      await writeCliConfig({ ...file, currentContext: name });
      process.stderr.write(`current context: ${name}\n`);
    });
}
