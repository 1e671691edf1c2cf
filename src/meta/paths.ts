import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The directory holding this package's `package.json` (the repository root in a checkout),
 * found by walking up from this file so it works from `src/` under tsx and from `dist/`.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, "package.json");
    if (existsSync(manifest)) {
      const { name } = JSON.parse(readFileSync(manifest, "utf8")) as { name?: string };
      if (name === "dataverket") return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error("cannot find the dataverket package root");
    dir = parent;
  }
}

/** The version in this package's `package.json`. */
export function packageVersion(): string {
  const manifest = join(packageRoot(), "package.json");
  return (JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version;
}
