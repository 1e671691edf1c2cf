import { type Command, Option } from "commander";
import { dump as dumpYaml } from "js-yaml";

/** How a command prints what it got: a table for people, JSON or YAML for scripts. */
export type OutputFormat = "table" | "json" | "yaml";

/** Adds `-o/--output table|json|yaml`. */
export function withOutputOption(command: Command): Command {
  return command.addOption(
    new Option("-o, --output <format>", "how to print the result")
      .choices(["table", "json", "yaml"])
      .default("table"),
  );
}

/** Columns aligned with two spaces between them, headers in capitals, as kubectl prints them. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join("\n")}\n`;
}

/** `value` as JSON or YAML, or `asTable()` for the table formats. */
export function formatted(format: string, value: unknown, asTable: () => string): string {
  return format === "json"
    ? `${JSON.stringify(value, null, 2)}\n`
    : format === "yaml"
      ? dumpYaml(value, { noRefs: true, lineWidth: 120 })
      : asTable();
}

/** Prints `value` as JSON or YAML, or with `asTable` for the table format. */
export function print(format: OutputFormat, value: unknown, asTable: () => string): void {
  process.stdout.write(formatted(format, value, asTable));
}

/** How long ago `iso` was, as `5s`, `3m`, `2h`, `4d`. */
export function age(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.round(seconds / 3600)}h`;
  return `${Math.round(seconds / 86_400)}d`;
}
