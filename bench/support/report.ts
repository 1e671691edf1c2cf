// What a benchmark measured, one JSON line per measurement in .cache/bench/results.jsonl; the
// summary (summary.ts) prints them all as one table when `npm run bench` ends.
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where this run's measurements are collected. */
export const RESULTS = join(import.meta.dirname, "../../.cache/bench/results.jsonl");

/** A stated goal for one measurement: at least, or below, a target. */
export type Goal = { readonly atLeast: number } | { readonly below: number };

/** One number, with its unit and what it counts; and the goal it has, if any. */
export interface Measurement {
  readonly scenario: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly goal?: Goal & {
    readonly met: boolean;
    /** How far from the goal, in percent of the target (0 when met). */
    readonly missedByPercent: number;
  };
}

/** Whether `value` meets `goal`, and by how much it misses. */
export function judge(value: number, goal: Goal): { met: boolean; missedByPercent: number } {
  if ("atLeast" in goal) {
    const met = value >= goal.atLeast;
    return { met, missedByPercent: met ? 0 : round((100 * (goal.atLeast - value)) / goal.atLeast) };
  }
  const met = value < goal.below;
  return { met, missedByPercent: met ? 0 : round((100 * (value - goal.below)) / goal.below) };
}

/** Records measurements of `scenario` (value, unit and an optional goal) and prints them. */
export function report(
  scenario: string,
  measured: Record<string, readonly [value: number, unit: string, goal?: Goal | undefined]>,
): void {
  mkdirSync(dirname(RESULTS), { recursive: true });
  for (const [metric, [value, unit, goal]] of Object.entries(measured)) {
    const m: Measurement = {
      scenario,
      metric,
      value: round(value),
      unit,
      ...(goal ? { goal: { ...goal, ...judge(value, goal) } } : {}),
    };
    appendFileSync(RESULTS, `${JSON.stringify(m)}\n`);
    console.log(
      `${scenario.padEnd(12)} ${metric.padEnd(48)} ${String(m.value).padStart(10)} ${unit}${m.goal ? (m.goal.met ? "  (goal met)" : `  (goal missed by ${m.goal.missedByPercent} %)`) : ""}`,
    );
  }
}

const round = (v: number): number =>
  Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100;

/** The p-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Runs `fn` over `items` with at most `limit` at once; returns the milliseconds each took. */
export async function timedPool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<number[]> {
  const took: number[] = [];
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      const started = performance.now();
      await fn(item);
      took.push(performance.now() - started);
    }
  });
  await Promise.all(lanes);
  return took;
}

/** Where a scenario's time went: a profile's or pg_stat_statements' top entries. */
export interface Hotspots {
  readonly scenario: string;
  readonly title: string;
  readonly entries: readonly { name: string; ms: number; percent: number }[];
}

/** Where this run's hotspots are collected. */
export const HOTSPOTS = join(dirname(RESULTS), "hotspots.jsonl");

/** Records where `scenario`'s time went (`title`: what was measured) and prints it. */
export function hotspots(
  scenario: string,
  title: string,
  entries: readonly { name: string; ms: number; percent: number }[],
): void {
  mkdirSync(dirname(HOTSPOTS), { recursive: true });
  appendFileSync(HOTSPOTS, `${JSON.stringify({ scenario, title, entries } satisfies Hotspots)}\n`);
  console.log(`${scenario}: ${title}`);
  for (const e of entries)
    console.log(`  ${String(e.percent).padStart(5)} %  ${e.ms} ms  ${e.name}`);
}
