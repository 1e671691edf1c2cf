import { defineConfig } from "vitest/config";

// Two tiers. `unit` needs nothing running. `integration` talks to the real PostgreSQL and
// nats-server that hack/services.sh installs and starts (see test/support/global-setup.ts);
// `gitops-health` is integration too, run after it (sequence.groupOrder).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["{src,controllers,crds,hack,bench,chaos}/**/*.test.ts"],
          exclude: ["**/*.int.test.ts", "node_modules/**"],
        },
      },
      {
        test: {
          name: "integration",
          include: ["{src,controllers,crds,test}/**/*.int.test.ts"],
          exclude: ["node_modules/**", "test/e2e/**"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
        },
      },
      {
        test: {
          // Runs a platform controller on the test API server, whose kinds are cluster-scoped:
          // after the integration tier (which has one too), never beside it.
          name: "gitops-health",
          include: ["hack/**/*.int.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: "forks",
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
