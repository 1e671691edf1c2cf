import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { load as loadYaml, YAMLException } from "js-yaml";
import type { z } from "zod";
import { ConfigError, ConfigFileError, type ConfigProblem } from "./errors.js";
import { type Config, configSchema, ENV_BINDINGS, PATH_FIELDS } from "./schema.js";

/** Inputs of {@link loadConfig}; everything defaults to the real process. */
export interface LoadConfigOptions {
  /** Environment variables; defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A YAML configuration file; defaults to `DV_CONFIG` from the environment. */
  readonly file?: string | undefined;
  /** Directory that relative paths are resolved against; defaults to `process.cwd()`. */
  readonly cwd?: string;
  /** Field overrides from command-line flags, applied last, named by `source` in errors. */
  readonly overrides?: readonly { path: readonly string[]; value: unknown; source: string }[];
}

type Tree = Record<string, unknown>;

const key = (path: readonly PropertyKey[]): string => path.map(String).join(".");

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const segment of path.slice(0, -1)) {
    const next = node[segment];
    if (typeof next !== "object" || next === null || Array.isArray(next)) node[segment] = {};
    node = node[segment] as Tree;
  }
  node[path[path.length - 1] as string] = value;
}

function getPath(tree: unknown, path: readonly string[]): unknown {
  let node = tree;
  for (const segment of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Tree)[segment];
  }
  return node;
}

function readFile(path: string): Tree {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigFileError(
      path,
      code === "ENOENT" ? "no such file (set by --config or DV_CONFIG)" : `cannot read (${code})`,
      { cause: err },
    );
  }
  let doc: unknown;
  try {
    doc = loadYaml(text, { filename: path });
  } catch (err) {
    const reason = err instanceof YAMLException ? err.reason : "not valid YAML";
    throw new ConfigFileError(path, `not valid YAML: ${reason}`, { cause: err });
  }
  if (doc === undefined || doc === null) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    throw new ConfigFileError(path, "must be a YAML mapping of configuration fields");
  }
  return doc as Tree;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/**
 * Reads the process configuration once: the optional YAML file, then environment variables, then
 * flag overrides; validates everything against {@link configSchema}; resolves relative paths; and
 * returns a deeply frozen object.
 *
 * @throws {ConfigError} with every invalid or unknown value, each named by its variable or field.
 * @throws {ConfigFileError} when the configuration file cannot be read or is not a YAML mapping.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const filePath = options.file ?? (env.DV_CONFIG === "" ? undefined : env.DV_CONFIG);

  const raw: Tree = filePath === undefined ? {} : readFile(resolve(cwd, filePath));
  // Where each field came from, so an error names what the user actually set.
  const sources = new Map<string, { source: string; input: unknown }>();
  const fileLabel = filePath ?? "";
  const envNames = new Map(ENV_BINDINGS.map((b) => [key(b.path), b.env]));

  for (const binding of ENV_BINDINGS) {
    const value = env[binding.env];
    if (value === undefined || value === "") continue;
    setPath(raw, binding.path, value);
    sources.set(key(binding.path), { source: binding.env, input: value });
  }
  for (const override of options.overrides ?? []) {
    setPath(raw, override.path, override.value);
    sources.set(key(override.path), { source: override.source, input: override.value });
  }

  const sourceOf = (path: readonly PropertyKey[]): { source: string; input: unknown } => {
    const known = sources.get(key(path));
    if (known) return known;
    const input = getPath(raw, path.map(String));
    if (filePath !== undefined) return { source: `${fileLabel}: ${key(path)}`, input };
    const envName = envNames.get(key(path));
    return { source: envName ? `${key(path)} (${envName})` : key(path), input };
  };

  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.flatMap((issue) => describeIssue(issue, sourceOf)));
  }

  const config = structuredClone(parsed.data) as Tree;
  for (const field of PATH_FIELDS) {
    const value = getPath(config, field);
    if (typeof value === "string") setPath(config, field, resolve(cwd, value));
  }
  return deepFreeze(config as Config);
}

function describeIssue(
  issue: z.core.$ZodIssue,
  sourceOf: (path: readonly PropertyKey[]) => { source: string; input: unknown },
): ConfigProblem[] {
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((unknownKey) => ({
      source: sourceOf([...issue.path, unknownKey]).source,
      message: "unknown field; remove it or check its spelling",
    }));
  }
  if (issue.code === "invalid_type" && issue.expected === "object") {
    return [{ source: sourceOf(issue.path).source, message: "must be a mapping of fields" }];
  }
  const { source, input } = sourceOf(issue.path);
  const got = typeof input === "string" ? ` (got "${maskCredentials(input)}")` : "";
  return [{ source, message: `${issue.message}${got}` }];
}

/** Hides the password of `scheme://user:password@host` so an error line never leaks it. */
function maskCredentials(value: string): string {
  return value.replace(/(\/\/[^:/@]*):[^@/]*@/g, "$1:***@");
}

/** The executable search path of this process (`PATH`), for finding helper binaries. */
export function systemSearchPath(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  return env.PATH ?? "";
}

/**
 * The environment a helper program this process runs (`pg_dump`, `psql`) starts with: this
 * process's own, with `extra` on top. Secrets for the helper go here rather than on its command
 * line, where every user of the host could read them.
 */
export function childEnvironment(
  extra: Readonly<Record<string, string>>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Record<string, string> {
  const inherited = Object.entries(env).filter(
    (entry): entry is [string, string] => entry[1] !== undefined,
  );
  return { ...Object.fromEntries(inherited), ...extra };
}
