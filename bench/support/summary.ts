// Global setup of the benchmarks: starts fresh results and hotspot files; bench/run.ts reads
// them after the run and writes the report.
import { rmSync } from "node:fs";
import { HOTSPOTS, RESULTS } from "./report.js";

export default function setup(): void {
  rmSync(RESULTS, { force: true });
  rmSync(HOTSPOTS, { force: true });
}
