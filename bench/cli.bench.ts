// How long `dv` takes to start: a CLI command (what an operator waits for on every call), and a
// worker process until /readyz answers (what a restart or a scale-up waits for), and the
// memory an idle worker holds.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Plane, startPlane } from "../test/support/plane.js";
import { runDv } from "../test/support/process.js";
import { rssOf } from "./support/processes.js";
import { percentile, report } from "./support/report.js";
import { size } from "./support/scale.js";

const VERSIONS = size(10, 2);
const WORKERS = size(5, 1);

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ controllers: false });
});
afterAll(async () => p.close());

describe("start-up", () => {
  it(`dv --version, ${VERSIONS} times`, async () => {
    const took: number[] = [];
    for (let i = 0; i < VERSIONS; i++) {
      const started = performance.now();
      const r = await runDv(["--version"], {});
      took.push(performance.now() - started);
      expect(r.code).toBe(0);
    }
    report("cli", {
      "dv --version, median": [percentile(took, 50), "ms"],
      "dv --version, p90": [percentile(took, 90), "ms"],
    });
  });

  it(`dv worker until /readyz, ${WORKERS} times, and its memory when idle`, async () => {
    const took: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const started = performance.now();
      const worker = await p.spawn(["worker", "--service", "nett"]);
      took.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 1_000));
      rss.push(rssOf(worker.child.pid ?? 0));
      worker.child.kill("SIGTERM");
      expect(await worker.exited).toBe(0);
    }
    report("cli", {
      "dv worker to /readyz, median": [percentile(took, 50), "ms"],
      "dv worker idle RSS, median": [percentile(rss, 50), "MiB"],
    });
  });
});
