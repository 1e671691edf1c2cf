// The platform controllers on a directory of YAML (the embedded default of `npm run dev`): files
// added, changed and removed are applied while running; a broken file changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { createServices } from "../../src/app/services.js";
import { LeaseStore } from "../../src/contexts/runtime/index.js";
import { newId } from "../../src/kernel/index.js";
import { createLogger } from "../../src/observability/index.js";
import { realClock } from "../../src/reconcile/index.js";
import {
  DirectoryPlatformSource,
  type PlatformManager,
  PlatformSync,
  startPlatformManager,
} from "../index.js";

const log = createLogger({
  level: process.env.DV_TEST_LOG === "1" ? "debug" : "silent",
  service: "test",
  datacenterId: "dc1",
});

let t: TestDatabase;
let dir: string;
let running: PlatformManager;

const machineClass = (
  name: string,
  cpuCores: number,
) => `apiVersion: platform.dataverket.io/v1alpha1
kind: MachineClass
metadata:
  name: ${name}
spec:
  cpuCores: ${cpuCores}
  memoryMiB: 4096
`;

type Row = {
  name: string;
  generation: number;
  observed: number | null;
  cpu: number | null;
  ready: string | null;
};

async function rows(): Promise<Row[]> {
  return t.admin.query<Row>(
    `SELECT name, generation::int, observed_generation::int AS observed, (spec->>'cpuCores')::int AS cpu,
            status->'conditions'->0->>'status' AS ready
       FROM platform.objects WHERE kind = 'MachineClass' ORDER BY name`,
  );
}

beforeAll(async () => {
  t = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), "dv-platform-dir-"));
  writeFileSync(join(dir, "small.yaml"), machineClass("small", 2));
  const services = createServices(t.db, newId);
  running = await startPlatformManager({
    sync: (fence) => new PlatformSync(services, { fence }),
    leases: new LeaseStore(t.db),
    source: new DirectoryPlatformSource(dir, log, { debounceMs: 50 }),
    holder: "dir-replica",
    settings: { leaseTtlMs: 3_000, leaseRenewMs: 1_000, leaseRetryMs: 300 },
    clock: realClock,
    log,
  });
});

afterAll(async () => {
  await running?.stop();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe("platform configuration from a watched directory", () => {
  it("applies what is there at start, then every change, and forgets what is removed", async () => {
    await eventually(
      async () => ((await rows())[0]?.ready === "True" ? true : undefined),
      15_000,
      "the first file to be applied",
    );
    expect(await rows()).toEqual([
      { name: "small", generation: 1, observed: 1, cpu: 2, ready: "True" },
    ]);

    writeFileSync(join(dir, "small.yaml"), machineClass("small", 4));
    writeFileSync(join(dir, "large.yaml"), machineClass("large", 32));
    await eventually(
      async () => {
        const r = await rows();
        return r.length === 2 &&
          r.every((x) => x.ready === "True" && x.observed === x.generation) &&
          r.find((x) => x.name === "small")?.cpu === 4
          ? r
          : undefined;
      },
      15_000,
      "the change and the new file to be applied",
    );
    expect(await rows()).toEqual([
      { name: "large", generation: 1, observed: 1, cpu: 32, ready: "True" },
      { name: "small", generation: 2, observed: 2, cpu: 4, ready: "True" },
    ]);

    rmSync(join(dir, "large.yaml"));
    await eventually(
      async () => ((await rows()).length === 1 ? true : undefined),
      15_000,
      "the removed file's object to be forgotten",
    );
    expect((await rows()).map((r) => r.name)).toEqual(["small"]);
  });

  it("keeps the previous configuration when a file does not parse", async () => {
    writeFileSync(join(dir, "small.yaml"), "kind: [\n");
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await rows()).toEqual([
      { name: "small", generation: 2, observed: 2, cpu: 4, ready: "True" },
    ]);
    writeFileSync(join(dir, "small.yaml"), machineClass("small", 8));
    await eventually(
      async () => ((await rows())[0]?.cpu === 8 ? true : undefined),
      15_000,
      "the fixed file to be applied",
    );
  });
});
