// What a benchmark measured, one JSON line per measurement in .cache/bench/results.jsonl; the
// summary (summary.ts) prints them all as one table when `npm run bench` ends.
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";

/** Where this run's measurements are collected. */
export const RESULTS = join(import.meta.dirname, "../../.cache/bench/results.jsonl");

/** One number, with its unit and what it counts. */
export interface Measurement {
  readonly scenario: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}

/** Records measurements of `scenario` and prints them. */
export function report(
  scenario: string,
  measured: Record<string, readonly [value: number, unit: string]>,
): void {
  mkdirSync(dirname(RESULTS), { recursive: true });
  for (const [metric, [value, unit]] of Object.entries(measured)) {
    const m: Measurement = { scenario, metric, value: round(value), unit };
    appendFileSync(RESULTS, `${JSON.stringify(m)}\n`);
    console.log(
      `${scenario.padEnd(12)} ${metric.padEnd(40)} ${String(m.value).padStart(10)} ${unit}`,
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

/** Resident set size of a process, in MiB, from /proc (Linux). */
export async function rssMiB(pid: number): Promise<number> {
  const { readFile } = await import("node:fs/promises");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}
