// Regenerates the committed files that are generated from code. `npm run generate` writes them;
// `hack/check-generated.sh` runs this into a scratch folder and fails on any difference.
//
//   docs/api/openapi.json            OpenAPI 3.1 document of /api/v1 (from src/api's zod schemas)
//   docs/generated/messages.md       every NATS subject and message type (from src/messaging)
//   docs/generated/configuration.md  every configuration variable (from src/config/schema.ts)
//   config/crd/bases/*.yaml          the CRDs of platform.dataverket.io (from crds/schemas.ts),
//   charts/dataverket/crds/*.yaml    and the same files for the Helm chart
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { buildOpenApiDocument } from "../src/api/index.js";
import { renderCustomResourceDefinitions } from "../crds/index.js";
import { renderConfigReference } from "../src/config/index.js";
import { messages, renderMessageCatalog } from "../src/messaging/index.js";

const root = resolve(process.argv[2] ?? join(import.meta.dirname, ".."));

function write(relative: string, text: string): void {
  const path = join(root, relative);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

write("docs/api/openapi.json", `${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`);
write("docs/generated/messages.md", renderMessageCatalog(messages));
write("docs/generated/configuration.md", renderConfigReference());
for (const [file, text] of renderCustomResourceDefinitions()) {
  write(`config/crd/bases/${file}`, text);
  write(`charts/dataverket/crds/${file}`, text);
}
