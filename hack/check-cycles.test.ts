// The cycle check of `npm run lint` on small projects written for it: it must find the cycles
// import-x/no-cycle lets through (closed by a type-only import, a re-export, an `import()` type)
// and nothing in a project without one.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { findImportCycles, formatImportCycles, readProject } from "./check-cycles.js";

const roots: string[] = [];

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

/** Writes `files` (path → source) and a NodeNext tsconfig into a fresh folder; returns it. */
function project(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "dv-cycles-"));
  roots.push(root);
  const all: Record<string, string> = {
    "tsconfig.json": JSON.stringify({
      compilerOptions: { module: "NodeNext", moduleResolution: "NodeNext", strict: true },
      include: ["src"],
    }),
    ...files,
  };
  for (const [path, text] of Object.entries(all)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

/** The cycles of the project at `root`, as relative paths: each cycle's files. */
function cyclesOf(root: string): string[][] {
  const { files, compilerOptions } = readProject(join(root, "tsconfig.json"));
  return findImportCycles({ files, compilerOptions }).map((cycle) =>
    cycle.files.map((file) => file.slice(root.length + 1)),
  );
}

describe("check-cycles", () => {
  it("finds a cycle closed by type-only imports, which import-x/no-cycle skips", () => {
    const root = project({
      // The shape of src/db before: backup -> tx (value) -> database (type) -> backup (type).
      "src/backup.ts": 'import { ROLES } from "./tx.js";\nexport type Snapshot = typeof ROLES;\n',
      "src/tx.ts":
        'import type { Database } from "./database.js";\nexport const ROLES = ["a"];\nexport type T = Database;\n',
      "src/database.ts":
        'import type { Snapshot } from "./backup.js";\nexport interface Database { s: Snapshot }\n',
    });
    expect(cyclesOf(root)).toEqual([["src/backup.ts", "src/database.ts", "src/tx.ts"]]);
  });

  it("follows inline type specifiers, re-exports through an index and import() types", () => {
    const root = project({
      "src/a/index.ts": 'export { a } from "./a.js";\n',
      "src/a/a.ts": 'import { type B } from "../b/index.js";\nexport const a = (b: B) => b;\n',
      "src/b/index.ts": 'export type { B } from "./b.js";\n',
      "src/b/b.ts": 'export type B = ReturnType<typeof import("../a/index.js").a> | 1;\n',
    });
    expect(cyclesOf(root)).toEqual([
      ["src/a/a.ts", "src/a/index.ts", "src/b/b.ts", "src/b/index.ts"],
    ]);
  });

  it("counts a dynamic import() and a file importing itself", () => {
    const root = project({
      "src/lazy.ts": 'export const load = () => import("./main.js");\n',
      "src/main.ts": 'import { load } from "./lazy.js";\nexport const m = load;\n',
      "src/self.ts":
        'import type { X } from "./self.js";\nexport type X = 1;\nexport type Y = X;\n',
    });
    expect(cyclesOf(root)).toEqual([["src/lazy.ts", "src/main.ts"], ["src/self.ts"]]);
  });

  it("finds nothing in a project whose imports point one way", () => {
    const root = project({
      "src/kernel.ts": "export type Id = string;\n",
      "src/store.ts":
        'import type { Id } from "./kernel.js";\nimport { join } from "node:path";\nexport const key = (id: Id) => join("k", id);\n',
      "src/app.ts":
        'import { key } from "./store.js";\nimport type { Id } from "./kernel.js";\nexport const run = (id: Id) => key(id);\n',
    });
    expect(cyclesOf(root)).toEqual([]);
  });

  it("names each edge of a shortest cycle with its line and kind", () => {
    const root = project({
      "src/status.ts":
        '// status\nimport { assess } from "./recovery.js";\nexport interface Replica { lag: number }\nexport const status = assess;\n',
      "src/recovery.ts":
        'import type { Replica } from "./status.js";\nexport const assess = (r: Replica) => r.lag;\n',
    });
    const { files, compilerOptions } = readProject(join(root, "tsconfig.json"));
    expect(formatImportCycles(findImportCycles({ files, compilerOptions }), root)).toBe(
      [
        "cycle 1: 2 files",
        "    src/recovery.ts",
        "    src/status.ts",
        "  for example:",
        "    src/recovery.ts:1 -> src/status.ts (type)",
        "    src/status.ts:2 -> src/recovery.ts",
      ].join("\n"),
    );
  });
});
