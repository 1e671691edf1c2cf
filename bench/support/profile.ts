// Where a CPU profile (`node --cpu-prof`, a .cpuprofile file) spent its time: self time per
// function and per package, largest first. `npm run bench -- --profile` writes the profiles of
// the benchmark processes to .cache/bench/profiles; `tsx bench/support/profile.ts FILE` reads one.
import { readFileSync } from "node:fs";

interface ProfileNode {
  readonly id: number;
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One line of a summary: a name and the milliseconds of self time spent there. */
export interface Hotspot {
  readonly name: string;
  readonly ms: number;
  readonly percent: number;
}

/** The package (or `dataverket`, `node`, or a special frame) a profiled function belongs to. */
export function packageOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || "native"})`;
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) {
    const rest = url.slice(modules + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? "?");
  }
  if (url.startsWith("node:")) return "node";
  return "dataverket";
}

/** Self time by function and by package of a profile. */
export function summarise(
  profile: CpuProfile,
  top = 15,
): { totalMs: number; functions: Hotspot[]; packages: Hotspot[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) =>
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)),
  );
  const functions = new Map<string, number>();
  const packages = new Map<string, number>();
  let total = 0;
  for (const [id, micros] of self) {
    const node = byId.get(id);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    total += micros;
    const file = url
      .replace(/^.*node_modules\//, "")
      .replace(/^file:\/\/.*?\/(src|controllers|bench|test)\//, "$1/");
    const fn = `${functionName || "(anonymous)"} ${file ? `${file}:${lineNumber + 1}` : ""}`.trim();
    functions.set(fn, (functions.get(fn) ?? 0) + micros);
    const pkg = packageOf(url, functionName);
    packages.set(pkg, (packages.get(pkg) ?? 0) + micros);
  }
  const rank = (m: Map<string, number>): Hotspot[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, micros]) => ({
        name,
        ms: Math.round(micros / 1000),
        percent: Math.round((1000 * micros) / total) / 10,
      }));
  return {
    totalMs: Math.round(total / 1000),
    functions: rank(functions),
    packages: rank(packages),
  };
}

/** Reads a .cpuprofile file and summarises it. */
export function summariseFile(file: string, top = 15): ReturnType<typeof summarise> {
  return summarise(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, top);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const file of process.argv.slice(2)) {
    const s = summariseFile(file, 25);
    console.log(`${file}: ${s.totalMs} ms sampled`);
    console.log("  by package:");
    for (const h of s.packages)
      console.log(`    ${String(h.percent).padStart(5)} %  ${h.ms} ms  ${h.name}`);
    console.log("  by function (self time):");
    for (const h of s.functions)
      console.log(`    ${String(h.percent).padStart(5)} %  ${h.ms} ms  ${h.name}`);
  }
}
