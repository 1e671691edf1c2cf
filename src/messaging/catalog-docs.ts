import { z } from "zod";
import { ENVELOPE_SPEC_VERSION } from "./envelope.js";
import type { MessageRegistry } from "./registry.js";

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
};

function typeOf(schema: JsonSchema): string {
  if (schema.enum) return schema.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  if (schema.anyOf) return schema.anyOf.map(typeOf).join(" \\| ");
  if (schema.type === "array") return `${typeOf(schema.items ?? {})}[]`;
  return Array.isArray(schema.type) ? schema.type.join(" \\| ") : (schema.type ?? "any");
}

/** Renders the catalogue of every subject and message type as Markdown (docs/generated/messages.md). */
export function renderMessageCatalog(registry: MessageRegistry): string {
  const lines = [
    "<!-- Generated from src/messaging by `npm run generate`; do not edit. -->",
    "# Messages",
    "",
    `Every message is a JSON envelope (specversion ${ENVELOPE_SPEC_VERSION}, seed 001) whose \`data\` carries`,
    "`schema_version` and the fields below. Producers refuse unknown fields; consumers ignore them.",
    "",
    "| subject | type | version | from | what |",
    "|---|---|---|---|---|",
    ...registry
      .all()
      .map(
        (d) =>
          `| \`${d.subject}\` | \`${d.type}\` | ${d.version} | ${d.source} | ${d.description} |`,
      ),
    "",
  ];
  for (const definition of registry.all()) {
    const schema = z.toJSONSchema(definition.data, {
      io: "input",
      unrepresentable: "any",
    }) as JsonSchema;
    lines.push(
      `## \`${definition.type}\``,
      "",
      `Subject \`${definition.subject}\`, payload version ${definition.version}.`,
      "",
    );
    lines.push("| field | type | required |", "|---|---|---|");
    for (const [name, field] of Object.entries(schema.properties ?? {})) {
      lines.push(
        `| \`${name}\` | ${typeOf(field)} | ${(schema.required ?? []).includes(name) ? "yes" : "no"} |`,
      );
    }
    lines.push("");
  }
  return `${lines.join("\n")}`;
}
