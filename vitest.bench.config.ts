import { defineConfig } from "vitest/config";

// `npm run bench`: the benchmarks in bench/, on the same real services as the integration tier
// (hack/services.sh), one file at a time so they do not share the two cores. They report numbers
// (bench/support/report.ts) and check that the work was done, never how fast.
export default defineConfig({
  test: {
    name: "bench",
    include: ["bench/**/*.bench.ts"],
    globalSetup: ["test/support/global-setup.ts", "bench/support/summary.ts"],
    fileParallelism: false,
    // A full run of one file (10,000 networks end to end) takes tens of minutes on 2 cores; its
    // own waits are bounded.
    testTimeout: 3 * 3600_000,
    hookTimeout: 120_000,
    pool: "forks",
    // `npm run bench -- --profile`: a CPU profile of each benchmark file's process.
    // eslint-disable-next-line no-restricted-properties -- set by bench/run.ts, not product configuration
    ...(process.env.DV_BENCH_PROFILE === "1"
      ? {
          execArgv: ["--cpu-prof", "--cpu-prof-dir=.cache/bench/profiles"],
        }
      : {}),
  },
});
