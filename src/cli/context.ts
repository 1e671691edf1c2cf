import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { dump, load, YAMLException } from "js-yaml";
import { z } from "zod";
import { CliError } from "./errors.js";
import { ExitCode } from "./exit-codes.js";

/**
 * The CLI's own file, like a kubeconfig: named contexts of server, token and the tenant, project
 * and environment commands default to, and the current one. `DV_CLI_CONFIG` points elsewhere
 * (tests, several setups); otherwise `$XDG_CONFIG_HOME/dataverket/config.yaml`, or
 * `~/.config/dataverket/config.yaml`.
 */
export function cliConfigPath(
  // The CLI's own file, found like kubectl finds a kubeconfig; not process configuration.
  // eslint-disable-next-line no-restricted-properties
  env: NodeJS.ProcessEnv = process.env,
): string {
  if (env.DV_CLI_CONFIG) return env.DV_CLI_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), ".config");
  return join(base, "dataverket", "config.yaml");
}

const label = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  error: "must be a DNS label (lower-case letters, digits, '-')",
});

/** NATS server URLs, comma-separated, as `--nats` and `NATS_URL` take them. */
const natsUrls = z
  .string()
  .max(2000)
  .refine(
    (text) =>
      text
        .split(",")
        .every(
          (url) => /^(nats|tls|ws|wss):\/\/[^\s,]+$/.test(url.trim()) && URL.canParse(url.trim()),
        ),
    { error: "must be NATS URLs, comma-separated (nats://host:port)" },
  );

export const CliContext = z.strictObject({
  name: z.string().min(1).max(100),
  server: z.url().optional(),
  /** The NATS servers of `dv sim` and `dv tail` (`dv dev` records its own). */
  nats: natsUrls.optional(),
  token: z.string().min(1).optional(),
  tenant: label.optional(),
  project: label.optional(),
  environment: label.optional(),
});
export type CliContext = z.infer<typeof CliContext>;

export const CliConfigFile = z.strictObject({
  currentContext: z.string().optional(),
  contexts: z.array(CliContext).default([]),
});
export type CliConfigFile = z.infer<typeof CliConfigFile>;

/** Reads the file; a missing one is empty. A broken one is a usage error naming file and field. */
export async function readCliConfig(path = cliConfigPath()): Promise<CliConfigFile> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return { contexts: [] };
    throw new CliError(`cannot read ${path}: ${(err as Error).message}`, ExitCode.Usage);
  }
  let raw: unknown;
  try {
    raw = load(text) ?? {};
  } catch (err) {
    const reason = err instanceof YAMLException ? err.reason : String(err);
    throw new CliError(`${path} is not valid YAML: ${reason}`, ExitCode.Usage);
  }
  const parsed = CliConfigFile.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      `${path}: ${issue?.path.join(".") || "(file)"}: ${issue?.message ?? "invalid"}`,
      ExitCode.Usage,
    );
  }
  return parsed.data;
}

/** Writes the file atomically, readable by its owner only (it holds tokens). */
export async function writeCliConfig(config: CliConfigFile, path = cliConfigPath()): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(
    tmp,
    `# Written by dv (dv config set-context / use-context, dv dev); see docs/operator-guide.md.\n${dump(config, { noRefs: true })}`,
    { mode: 0o600 },
  );
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** The current context, if there is one. */
export async function currentContext(path = cliConfigPath()): Promise<CliContext | undefined> {
  const config = await readCliConfig(path);
  if (!config.currentContext) return undefined;
  const found = config.contexts.find((c) => c.name === config.currentContext);
  if (!found)
    throw new CliError(
      `${path}: currentContext "${config.currentContext}" is not among the contexts; run dv config use-context <name>`,
      ExitCode.Usage,
    );
  return found;
}

/** Adds or changes a context (fields given replace those stored), and optionally makes it current. */
export async function setContext(
  context: CliContext,
  options: { use: boolean },
  path = cliConfigPath(),
): Promise<CliConfigFile> {
  const config = await readCliConfig(path);
  const before = config.contexts.find((c) => c.name === context.name);
  const merged = CliContext.parse({ ...before, ...context });
  const contexts = [...config.contexts.filter((c) => c.name !== context.name), merged].sort(
    (a, b) => a.name.localeCompare(b.name),
  );
  const next: CliConfigFile = {
    ...(options.use || !config.currentContext
      ? { currentContext: context.name }
      : { currentContext: config.currentContext }),
    contexts,
  };
  await writeCliConfig(next, path);
  return next;
}
