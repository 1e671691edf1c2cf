import { describe, expect, it } from "vitest";
import { configFields, defaultConfig, valueAt } from "./reference.js";
import { ENV_BINDINGS, renderConfigReference } from "./index.js";

const dotted = (path: readonly string[]): string => path.join(".");

/** The table row of `env` in the rendered reference, split into its cells. */
function rowOf(reference: string, env: string): string[] | undefined {
  const line = reference.split("\n").find((l) => l.startsWith(`| \`${env}\` |`));
  return line
    ?.slice(2, -2)
    .split(/(?<!\\) \| /)
    .map((c) => c.replaceAll("\\|", "|"));
}

describe("the configuration reference", () => {
  const reference = renderConfigReference();

  it("lists every variable with its file field and its description", () => {
    for (const binding of ENV_BINDINGS) {
      expect(binding.description.length, binding.env).toBeGreaterThan(20);
      const row = rowOf(reference, binding.env);
      expect(row, binding.env).toEqual([
        `\`${binding.env}\``,
        `\`${dotted(binding.path)}\``,
        expect.any(String),
        binding.description,
      ]);
    }
  });

  it("shows every default the schema applies, as written (paths relative), and unset fields as unset", () => {
    const defaults = defaultConfig();
    for (const binding of ENV_BINDINGS) {
      const value = valueAt(defaults, binding.path);
      const shown = rowOf(reference, binding.env)?.[2];
      if (value === undefined) {
        expect(shown, binding.env).toBe("unset");
        continue;
      }
      const text = Array.isArray(value)
        ? value.join(",")
        : typeof value === "string" || typeof value === "number"
          ? `${value}`
          : JSON.stringify(value);
      expect(shown, binding.env).toBe(`\`${text}\``);
    }
    expect(rowOf(reference, "DV_PGLITE_DIR")?.[2]).toBe("`.cache/dev/pglite`");
    expect(rowOf(reference, "DV_HTTP_PORT")?.[2]).toBe("`8080`");
    expect(rowOf(reference, "DATABASE_URL")?.[2]).toBe("unset");
  });

  it("binds only fields that exist: with a default, or optional in the schema", () => {
    const defaults = defaultConfig();
    const optional = new Set(
      configFields()
        .filter((f) => f.optional)
        .map((f) => dotted(f.path)),
    );
    for (const binding of ENV_BINDINGS) {
      const value = valueAt(defaults, binding.path);
      const exists =
        (value !== undefined && (typeof value !== "object" || Array.isArray(value))) ||
        optional.has(dotted(binding.path));
      expect(exists, `${binding.env} -> ${dotted(binding.path)}`).toBe(true);
    }
  });

  it("leaves no field of the schema without a variable, and binds none twice", () => {
    const bound = ENV_BINDINGS.map((b) => dotted(b.path));
    expect(new Set(bound).size).toBe(bound.length);
    expect(new Set(ENV_BINDINGS.map((b) => b.env)).size).toBe(ENV_BINDINGS.length);
    expect(configFields().map((f) => dotted(f.path))).toEqual(expect.arrayContaining(bound));
    expect(bound).toEqual(expect.arrayContaining(configFields().map((f) => dotted(f.path))));
  });

  it("has one section per top-level field, and says it is generated", () => {
    expect(reference.split("\n")[0]).toMatch(
      /^<!-- Generated from src\/config\/schema\.ts by `npm run generate`; do not edit by hand\. -->$/,
    );
    const sections = reference
      .split("\n")
      .filter((l) => l.startsWith("## "))
      .map((l) => l.slice(4, -1));
    expect(sections).toEqual([
      "datacenterId",
      "log",
      "http",
      "database",
      "nats",
      "kubernetes",
      "platform",
      "auth",
      "controller",
      "worker",
      "tracing",
      "api",
    ]);
  });
});
