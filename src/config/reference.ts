import { z } from "zod";
import { configSchema, ENV_BINDINGS, type EnvBinding } from "./schema.js";

/** One leaf field of {@link configSchema}: its dotted path, and whether it may be left unset. */
export interface ConfigField {
  readonly path: readonly string[];
  /** True when the field has no default: absent, it stays `undefined`. */
  readonly optional: boolean;
}

/**
 * Every leaf field of {@link configSchema}, in declaration order. Sections are the top-level
 * objects (`http`, `controller`, …); `datacenterId` is a leaf of its own.
 */
export function configFields(): ConfigField[] {
  const fields: ConfigField[] = [];
  const walk = (schema: z.ZodType, path: readonly string[], optional: boolean): void => {
    if (schema instanceof z.ZodObject) {
      for (const [name, child] of Object.entries<z.ZodType>(schema.shape))
        walk(child, [...path, name], false);
    } else if (schema instanceof z.ZodOptional) {
      walk(schema.unwrap() as z.ZodType, path, true);
    } else if (schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
      walk(schema.unwrap() as z.ZodType, path, optional);
    } else {
      fields.push({ path, optional });
    }
  };
  walk(configSchema, [], false);
  return fields;
}

/** The configuration every role runs on when nothing is set: the schema's own defaults. */
export function defaultConfig(): unknown {
  return configSchema.parse({});
}

/** The value at `path` of a parsed configuration, `undefined` when absent. */
export function valueAt(tree: unknown, path: readonly string[]): unknown {
  let node = tree;
  for (const segment of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[segment];
  }
  return node;
}

/** A Markdown table cell: pipes escaped, no line breaks. */
const cell = (text: string): string => text.replaceAll("|", "\\|").replaceAll("\n", " ");

const code = (text: string): string => `\`${text}\``;

function renderDefault(value: unknown): string {
  if (value === undefined) return "unset";
  // A list is set from the environment as a comma-separated value; show it that way.
  if (Array.isArray(value)) return code(value.map(String).join(","));
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean")
    return code(String(value));
  return code(JSON.stringify(value));
}

function row(binding: EnvBinding, defaults: unknown): string {
  return [
    code(binding.env),
    code(binding.path.join(".")),
    renderDefault(valueAt(defaults, binding.path)),
    cell(binding.description),
  ].join(" | ");
}

/**
 * Renders the reference of every configuration variable as Markdown
 * (docs/generated/configuration.md): one table per top-level section of {@link configSchema},
 * each row a variable of {@link ENV_BINDINGS} with its file field, default and meaning.
 *
 * Defaults come from the schema itself (`configSchema.parse({})`), not from `loadConfig`, so
 * paths stay relative as written and the output is the same on every machine.
 */
export function renderConfigReference(bindings: readonly EnvBinding[] = ENV_BINDINGS): string {
  const defaults = defaultConfig();
  const sections = Object.keys(configSchema.shape);
  const lines = [
    "<!-- Generated from src/config/schema.ts by `npm run generate`; do not edit by hand. -->",
    "# Configuration reference",
    "",
    "Every Dataverket process (`dv dev`, `dv api`, `dv controller`, `dv worker`) reads one",
    "configuration, validated once at start: an optional YAML file (`--config FILE` or `DV_CONFIG`)",
    "whose fields are the dotted paths below, then the environment variables below (an empty",
    "variable counts as unset), then command-line flags. Later sources win. Relative paths are",
    "resolved against the working directory. See [development.md](../development.md#configuration)",
    "for how errors are reported.",
    "",
  ];
  for (const section of sections) {
    const rows = bindings.filter((b) => b.path[0] === section);
    if (rows.length === 0) continue;
    lines.push(
      `## \`${section}\``,
      "",
      "| variable | file field | default | meaning |",
      "|---|---|---|---|",
      ...rows.map((b) => `| ${row(b, defaults)} |`),
      "",
    );
  }
  return lines.join("\n");
}
