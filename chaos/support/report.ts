// What a chaos scenario observed, one JSON line per run in .cache/chaos/results.jsonl; `npm run
// chaos` (chaos/run.ts) adds the runs of each scenario up into the summary table.
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where this run's results are collected. */
export const RESULTS = join(import.meta.dirname, "../../.cache/chaos/results.jsonl");

/** Whether this is the reduced run (`npm run chaos -- --quick`, what CI runs). */
export const QUICK = process.env.DV_CHAOS_QUICK === "1";

/** `full` in a full run, `quick` in a quick one. */
export function size<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}

/** One run of one scenario: what was done to the system and what the checker found. */
export interface RunResult {
  /** Short identifier, the same for every run of the scenario (`worker-kill`). */
  readonly scenario: string;
  /** Faults injected in this run (kills, pauses, restarts, proxy faults, poison messages…). */
  readonly faults: number;
  /** Operations of the workload the checker looked at (commands, requests, reservations…). */
  readonly operations: number;
  /** Acknowledged operations whose effect is missing. */
  readonly lost: number;
  /** Effects applied more than once, or things assigned twice. */
  readonly duplicated: number;
  /** Any other broken invariant (stale writes accepted, cross-tenant reads, leaked rows…). */
  readonly violations: number;
  /** From the last fault healed to the system converged again, in ms (undefined: not measured). */
  readonly recoveryMs?: number | undefined;
  /** Other figures worth printing (name → value). */
  readonly figures?: Readonly<Record<string, number | string>>;
}

/** Records one run of a scenario and prints it. Call it before asserting, so a failure shows. */
export function record(result: RunResult): void {
  mkdirSync(dirname(RESULTS), { recursive: true });
  appendFileSync(RESULTS, `${JSON.stringify(result)}\n`);
  const figures = Object.entries(result.figures ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  console.log(
    `chaos ${result.scenario}: faults=${result.faults} operations=${result.operations} lost=${result.lost} duplicated=${result.duplicated} violations=${result.violations}` +
      (result.recoveryMs === undefined ? "" : ` recovery=${Math.round(result.recoveryMs)}ms`) +
      (figures ? ` ${figures}` : ""),
  );
}
