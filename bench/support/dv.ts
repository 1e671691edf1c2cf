// `dv` processes of a benchmark, run from the build in dist/ — what the image runs, so their
// memory is not that of TypeScript compiled in memory — against a benchmark's database and
// nats-server. `npm run bench` builds dist/ first. With DV_BENCH_PROFILE=1 each writes a CPU
// profile to .cache/bench/profiles/<label>/ when it exits.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../../src/dev/index.js";
import { eventually } from "../../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { type DevAuth, devAuth } from "../../test/support/dev-auth.js";
import { startTestNats, type TestNats } from "../../test/support/nats.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MAIN = join(ROOT, "dist/src/cli/main.js");
export const PROFILES = join(ROOT, ".cache/bench/profiles");
export const BENCH_PLATFORM = join(ROOT, "bench/fixtures/platform");

/** A running `dv` process. */
export interface DvChild {
  readonly label: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** The last 20,000 characters it wrote, stdout and stderr. */
  output(): string;
  /** SIGTERM, and waits for the exit (a profile is written then). */
  stop(): Promise<void>;
}

/** Starts `dv <args>` from dist/ with `env`; resolves once its /readyz answers 200. */
export function startDv(
  label: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<DvChild> {
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: npm run bench builds it (npm run build)`);
  return startNode(label, [MAIN, ...args], env);
}

/** Starts the bare route of the API benchmark (bench/support/bare-route.ts). */
export function startBareRoute(env: Record<string, string>): Promise<DvChild> {
  return startNode(
    "bare-route",
    ["--import", "tsx", join(ROOT, "bench/support/bare-route.ts")],
    env,
  );
}

async function startNode(
  label: string,
  args: readonly string[],
  env: Record<string, string>,
): Promise<DvChild> {
  const port = await freePort();
  const profileDir = join(PROFILES, label);
  const nodeArgs =
    process.env.DV_BENCH_PROFILE === "1"
      ? (mkdirSync(profileDir, { recursive: true }), ["--cpu-prof", `--cpu-prof-dir=${profileDir}`])
      : [];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DV_CLI_CONFIG: join(tmpdir(), `dv-bench-cli-${process.pid}.yaml`),
      DV_HTTP_PORT: String(port),
      PORT: String(port),
      DV_LOG_LEVEL: process.env.DV_TEST_LOG ?? "warn",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  // The last of what it wrote (logs go to stdout, start-up failures to stderr), for diagnostics.
  let err = "";
  const keep = (chunk: Buffer): void => {
    err = (err + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${label} exited: ${err}`);
      const r = await fetch(`${url}/readyz`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    60_000,
    `${label} to be ready`,
  );
  return {
    label,
    child,
    pid: child.pid ?? 0,
    port,
    url,
    output: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A signing key `dv api` trusts (its public half in a PEM file) and tokens minted with it. */
export function benchKey(): Promise<DevAuth> {
  return devAuth({
    dir: mkdtempSync(join(tmpdir(), "dv-bench-key-")),
    issuer: "dataverket-bench",
    name: "bench",
  });
}

/** A benchmark's own database and nats-server, and the `dv` processes it starts on them. */
export interface Stage {
  readonly db: TestDatabase;
  readonly nats: TestNats;
  /** Processes to stop when the stage closes (push what `startDv` returns). */
  readonly processes: DvChild[];
  close(): Promise<void>;
}

/** Creates a fresh database and starts a nats-server for a benchmark file. */
export async function startStage(): Promise<Stage> {
  const db = await createTestDatabase();
  const nats = await startTestNats();
  const processes: DvChild[] = [];
  return {
    db,
    nats,
    processes,
    async close() {
      for (const p of processes) await p.stop();
      await nats.close();
      await db.drop();
    },
  };
}
