// How big a benchmark run is: `npm run bench` measures the sizes the goals are stated for;
// `npm run bench -- --quick` (DV_BENCH_QUICK=1) the same scenarios, reduced to run in under two
// minutes — to see that they still work, not to compare numbers.

/** Whether this is the reduced run. */
export const QUICK = process.env.DV_BENCH_QUICK === "1";

/** `full` in a full run, `quick` in a quick one. */
export function size<T>(full: T, quick: T): T {
  return QUICK ? quick : full;
}
