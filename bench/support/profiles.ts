// The CPU profiles `dv` processes wrote during a benchmark (DV_BENCH_PROFILE=1), summarised into
// the report: where each process's time went, by package and by function.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { summariseFile } from "./profile.js";
import { hotspots } from "./report.js";

/** Reports the newest profile in `dir` (of process `label`), if profiling was on. */
export function profileHotspots(scenario: string, label: string, dir: string): void {
  if (process.env.DV_BENCH_PROFILE !== "1" || !existsSync(dir)) return;
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) return;
  const s = summariseFile(newest, 10);
  hotspots(scenario, `${label}: CPU profile by package (${s.totalMs} ms sampled)`, s.packages);
  hotspots(scenario, `${label}: CPU profile by function, self time`, s.functions);
}
