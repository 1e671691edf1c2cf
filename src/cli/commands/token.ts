import { type Command, Option } from "commander";
import { loadDevKey, mintToken, ROLES, type Role } from "../../auth/index.js";
import { loadConfig } from "../../config/index.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";

const DURATION = /^(\d+)(s|m|h|d)$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

function ttlSeconds(text: string): number {
  const match = DURATION.exec(text);
  const value = Number(match?.[1]);
  const seconds = value * SECONDS[(match?.[2] ?? "s") as keyof typeof SECONDS];
  if (!match || seconds < 60 || seconds > 30 * 86400) {
    throw new CliError(
      `--ttl "${text}" must be a duration from 1m to 30d, like 30m, 12h or 7d`,
      ExitCode.Usage,
    );
  }
  return seconds;
}

/** Adds `dv token create`: mint a development bearer token for `npm run dev`. */
export function registerToken(program: Command): void {
  const token = program.command("token").description("development bearer tokens");
  token
    .command("create")
    .description(
      "mint a bearer token signed with the development key of dv dev (never for production: use your identity provider)",
    )
    .addOption(
      new Option("--role <role>", "what the token may do")
        .choices([...ROLES])
        .default("tenant-admin"),
    )
    .option("--tenant <tenant>", "the tenant (name or id) a tenant role is scoped to")
    .option("--project <project>", "narrow a tenant role to one project (name or id)")
    .option(
      "--subject <subject>",
      "who the token is for; recorded as the actor of every change",
      "dev-user",
    )
    .option("--ttl <duration>", "how long it is valid: 30m, 12h, 7d", "12h")
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .addHelpText(
      "after",
      "\nExamples:\n  export DV_TOKEN=$(npx dv token create --role tenant-admin --tenant acme)\n  npx dv token create --role operator --subject alice --ttl 1h\n",
    )
    .action(
      async (flags: {
        role: Role;
        tenant?: string;
        project?: string;
        subject: string;
        ttl: string;
        config?: string;
      }) => {
        if (flags.role !== "operator" && !flags.tenant) {
          throw new CliError(`--tenant is required for --role ${flags.role}`, ExitCode.Usage);
        }
        if (flags.role === "operator" && (flags.tenant || flags.project)) {
          throw new CliError(
            "an operator token is platform-wide: drop --tenant and --project",
            ExitCode.Usage,
          );
        }
        const config = loadConfig({ file: flags.config });
        const key = await loadDevKey(config.auth.devKeyFile, false).catch((err: unknown) => {
          throw new CliError(err instanceof Error ? err.message : String(err), ExitCode.Failed);
        });
        const jwt = await mintToken({
          key,
          issuer: config.auth.issuer,
          audience: config.auth.audience,
          subject: flags.subject,
          role: flags.role,
          tenant: flags.tenant,
          project: flags.project,
          ttlSeconds: ttlSeconds(flags.ttl),
        });
        process.stdout.write(`${jwt}\n`);
      },
    );
}
