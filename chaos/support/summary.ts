// Global setup of `npm run chaos`: starts a fresh results file; chaos/run.ts reads it at the end.
import { rmSync } from "node:fs";
import { RESULTS } from "./report.js";

export default function setup(): void {
  rmSync(RESULTS, { force: true });
}
