import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PlatformDocumentError, readPlatformDirectory } from "./index.js";

function dirWith(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "dv-platform-"));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const dc = (name: string) =>
  `apiVersion: platform.dataverket.io/v1alpha1\nkind: Datacenter\nmetadata:\n  name: ${name}\nspec: {}\n`;

describe("readPlatformDirectory", () => {
  it("reads every document of every YAML file, recursively, in a stable order", async () => {
    const dir = dirWith({
      "b.yaml": `${dc("dc2")}---\n${dc("dc3")}`,
      "a.yml": dc("dc1"),
      "pools/p.yaml": dc("dc4"),
      "kustomization.yaml": "resources: [a.yml]\n",
      "README.md": "not yaml",
    });
    const docs = await readPlatformDirectory(dir);
    expect(docs.map((d) => [d.file, d.name])).toEqual([
      ["a.yml", "dc1"],
      ["b.yaml", "dc2"],
      ["b.yaml", "dc3"],
      ["pools/p.yaml", "dc4"],
    ]);
  });

  it("names the file, document and field of an object outside our API group", async () => {
    const dir = dirWith({
      "x.yaml": `${dc("ok")}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n`,
    });
    await expect(readPlatformDirectory(dir)).rejects.toThrow(
      new PlatformDocumentError(
        "x.yaml",
        1,
        "apiVersion: must be platform.dataverket.io/<version>",
      ),
    );
  });

  it("names the file with broken YAML", async () => {
    const dir = dirWith({ "bad.yaml": "kind: [\n" });
    await expect(readPlatformDirectory(dir)).rejects.toThrow(
      /bad\.yaml \(document 1\): not valid YAML/,
    );
  });
});
