// Vitest global setup of the integration tier: installs and starts the real PostgreSQL,
// nats-server, kube-apiserver (with etcd) and Jaeger through hack/services.sh (idempotent), and stops at the end only what it started,
// so a developer's already-running services stay up. DV_KEEP_SERVICES=1 keeps everything running.
// It also builds the migrated template database every test file clones (template.ts).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import type { TestProject } from "vitest/node";
import { ensureTemplate } from "./template.js";

const run = promisify(execFile);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const { stdout } = await run("bash", ["hack/services.sh", "up"], {
    maxBuffer: 16 * 1024 * 1024,
    // A first run on a machine builds etcd and kube-apiserver from source (hack/kube.sh).
    timeout: 60 * 60_000,
  });
  const started = stdout.split("\n").filter(Boolean);
  project.provide("dvTemplateDatabase", await ensureTemplate());
  return async () => {
    if (started.length === 0 || process.env.DV_KEEP_SERVICES === "1") return;
    await run("bash", ["hack/services.sh", "down", ...started], { timeout: 120_000 });
  };
}
