import { defineConfig } from "vitest/config";

// `npm run chaos`: the fault scenarios, security checks and model-based tests in chaos/, on the
// real services hack/services.sh starts. One file at a time: each one kills, pauses and restarts
// processes of its own, and its recovery figures mean something only when it has the two cores.
export default defineConfig({
  test: {
    name: "chaos",
    include: ["chaos/**/*.chaos.ts"],
    globalSetup: ["test/support/global-setup.ts", "chaos/support/summary.ts"],
    fileParallelism: false,
    // Every wait inside a scenario is bounded; this ends a run that hangs anyway.
    testTimeout: 3600_000,
    hookTimeout: 180_000,
    pool: "forks",
  },
});
