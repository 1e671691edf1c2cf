import { type Command, Option } from "commander";
import { type DevKey, loadDevKey, mintToken, ROLES, type Role } from "../../auth/index.js";
import { type Config, loadConfig } from "../../config/index.js";
import { requestApi } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";

const DURATION = /^(\d+)(s|m|h|d)$/;
const SECONDS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

function ttlSeconds(text: string, maxHours: number): number {
  const match = DURATION.exec(text);
  const value = Number(match?.[1]);
  const seconds = value * SECONDS[(match?.[2] ?? "s") as keyof typeof SECONDS];
  if (!match || seconds < 60 || seconds > maxHours * 3600) {
    throw new CliError(
      `--ttl "${text}" must be a duration from 1m to ${maxHours}h (the longest lifetime the API accepts, DV_AUTH_MAX_TOKEN_LIFETIME_HOURS), like 30m or 12h`,
      ExitCode.Usage,
    );
  }
  return seconds;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The ids of the tenant (and project) named, asked of the API with a one-minute operator token of
 * the same development key: a token that names its tenant by id keeps meaning that tenant, also
 * after the name is deleted and taken again. When the API cannot be asked (not running, another
 * key), the names are kept and `warning` says what that means.
 *
 * @throws {CliError} when the API says the tenant or project does not exist.
 */
async function scopeIds(options: {
  server: string | undefined;
  key: DevKey;
  config: Config;
  tenant: string;
  project: string | undefined;
}): Promise<{ tenant: string; project: string | undefined; warning?: string }> {
  const { tenant, project } = options;
  const needsTenant = !UUID.test(tenant);
  const needsProject = project !== undefined && !UUID.test(project);
  if (!needsTenant && !needsProject) return { tenant, project };
  const operator = await mintToken({
    key: options.key,
    issuer: options.config.auth.issuer,
    audience: options.config.auth.audience,
    subject: "dv-token-create",
    role: "operator",
    ttlSeconds: 60,
  });
  const idOf = async (path: string): Promise<string> => {
    const response = await requestApi({ server: options.server, token: operator }, "GET", path, {
      signal: AbortSignal.timeout(5_000),
    });
    return ((await response.json()) as { metadata: { id: string } }).metadata.id;
  };
  try {
    const tenantId = needsTenant ? await idOf(`/tenants/${encodeURIComponent(tenant)}`) : tenant;
    const projectId = needsProject
      ? await idOf(`/tenants/${tenantId}/projects/${encodeURIComponent(project)}`)
      : project;
    return { tenant: tenantId, project: projectId };
  } catch (err) {
    if (err instanceof CliError && err.exitCode === ExitCode.NotFound) {
      throw new CliError(
        `${err.message}: create it first — a token names a tenant or project that exists when it is issued`,
        ExitCode.NotFound,
        { cause: err },
      );
    }
    const why = err instanceof Error ? err.message : String(err);
    return {
      tenant,
      project,
      warning: `could not look up the ids of ${needsTenant ? `tenant ${tenant}` : ""}${needsTenant && needsProject ? " and " : ""}${needsProject ? `project ${project}` : ""} (${why}); the token names them by name, and means only what has that name now: create them before you use it`,
    };
  }
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
    .option(
      "--ttl <duration>",
      "how long it is valid: 30m, 12h (at most DV_AUTH_MAX_TOKEN_LIFETIME_HOURS, 24h by default)",
      "12h",
    )
    .addOption(
      new Option(
        "--server <url>",
        "the API asked for the tenant's and project's ids (default: the current context's, else http://127.0.0.1:8080)",
      ).env("DV_SERVER"),
    )
    .option("-c, --config <file>", "YAML configuration file (default: $DV_CONFIG)")
    .addHelpText(
      "after",
      "\nThe token names its tenant and project by id, looked up in the running API, so it keeps meaning\nthem even if the name is later deleted and taken again; without the API it names them by name.\n\nExamples:\n  export DV_TOKEN=$(npx dv token create --role tenant-admin --tenant acme)\n  npx dv token create --role operator --subject alice --ttl 1h\n",
    )
    .action(
      async (flags: {
        role: Role;
        tenant?: string;
        project?: string;
        subject: string;
        ttl: string;
        server?: string;
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
        const ttl = ttlSeconds(flags.ttl, config.auth.maxTokenLifetimeHours);
        const scope = flags.tenant
          ? await scopeIds({
              server: flags.server,
              key,
              config,
              tenant: flags.tenant,
              project: flags.project,
            })
          : { tenant: undefined, project: undefined, warning: undefined };
        if (scope.warning) process.stderr.write(`dv: warning: ${scope.warning}\n`);
        const jwt = await mintToken({
          key,
          issuer: config.auth.issuer,
          audience: config.auth.audience,
          subject: flags.subject,
          role: flags.role,
          tenant: scope.tenant,
          project: scope.project,
          ttlSeconds: ttl,
        });
        process.stdout.write(`${jwt}\n`);
      },
    );
}
