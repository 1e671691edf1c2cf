import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import { delimiter, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import type { Logger } from "../observability/index.js";
import { freePort, portIsFree } from "./ports.js";

/** Options of {@link startEmbeddedNats}. */
export interface EmbeddedNatsOptions {
  /** The binary; default `.cache/bin/nats-server` under `repoRoot`, then `PATH`. */
  readonly bin?: string | undefined;
  /** Client port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  readonly storeDir: string;
  readonly log: Logger;
  readonly repoRoot: string;
  /** `PATH` to search when no binary is configured. */
  readonly searchPath: string;
  readonly startTimeoutMs?: number;
  /** `server_name`; `dv-dev` by default. Two linked servers need different names. */
  readonly serverName?: string;
  /** The JetStream domain (a datacenter's own NATS, ADR 0007). */
  readonly domain?: string;
  /** Accept site links (leaf node connections) on this port of 127.0.0.1. */
  readonly leafPort?: number;
  /**
   * Link to another site's server as a leaf node. Only the coordination subjects
   * (`dv.site.>`) and replies cross: commands, events, task events, RPC and JetStream
   * advisories stay in their site.
   */
  readonly leafRemote?: string;
}

/** What never crosses a site link (ADR 0007): each site's own commands, events and advisories. */
export const SITE_LOCAL_SUBJECTS: readonly string[] = [
  "dv.*.cmd.>",
  "dv.*.evt.>",
  "dv.rpc.>",
  "$JS.EVENT.>",
  "$JS.API.>",
];

/** A nats-server child process owned by `dv dev`. */
export interface EmbeddedNats {
  readonly url: string;
  readonly pid: number;
  readonly version: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and resolves when it has exited. */
  stop(): Promise<void>;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function findBinary(options: EmbeddedNatsOptions): string {
  if (options.bin) {
    if (isExecutable(options.bin)) return options.bin;
    throw new StartupError(
      StartupErrorCode.NatsServerMissing,
      `nats-server ${options.bin} (DV_NATS_SERVER_BIN) is not an executable file`,
      "fix DV_NATS_SERVER_BIN, or run bash hack/nats.sh install",
    );
  }
  const candidates = [
    join(options.repoRoot, ".cache", "bin", "nats-server"),
    ...options.searchPath
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, "nats-server")),
  ];
  const found = candidates.find(isExecutable);
  if (found) return found;
  throw new StartupError(
    StartupErrorCode.NatsServerMissing,
    "nats-server not found in .cache/bin or on PATH",
    "run bash hack/nats.sh install (npm run dev does), set DV_NATS_SERVER_BIN, or set NATS_URL to a running server",
  );
}

function versionOf(bin: string): string {
  const out = execFileSync(bin, ["--version"], { encoding: "utf8" }).trim();
  return out.split(/\s+/).pop() ?? "unknown";
}

function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolvePromise, reject) => {
    const attempt = (): void => {
      if (child.exitCode !== null || child.signalCode !== null) {
        reject(new Error(`exited with ${child.exitCode ?? child.signalCode}`));
        return;
      }
      const socket = tcpConnect({ port, host: "127.0.0.1" });
      socket.once("connect", () => {
        socket.destroy();
        resolvePromise();
      });
      socket.once("error", () => {
        socket.destroy();
        if (Date.now() > deadline)
          reject(new Error(`no answer on port ${port} within ${timeoutMs} ms`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a nats-server left running by an earlier `dv dev` that was killed without a chance to
 * clean up (SIGKILL, a crash): its pid file is in our store directory and its command line names
 * our configuration file, so it is ours to stop. Linux only (reads /proc); elsewhere a no-op.
 */
async function reapOrphan(pidFile: string, conf: string, log: Logger): Promise<void> {
  let pid: number;
  let cmdline: string;
  try {
    pid = Number.parseInt(readFileSync(pidFile, "utf8"), 10);
    cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || !cmdline.split("\0").includes(conf)) return;
  log.warn({ pid }, "stopping a nats-server left behind by an earlier dv dev");
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, "SIGKILL");
}

/**
 * Starts a nats-server with JetStream on loopback as a child of this process, for `dv dev`.
 * Its log lines are forwarded to `log` at debug level.
 *
 * @throws {StartupError} when the binary is missing, the port is taken, or the server fails to start.
 */
export async function startEmbeddedNats(options: EmbeddedNatsOptions): Promise<EmbeddedNats> {
  const bin = findBinary(options);
  const version = versionOf(bin);
  const storeDir = resolve(options.storeDir);
  mkdirSync(storeDir, { recursive: true });
  const conf = join(storeDir, "nats.conf");
  const pidFile = join(storeDir, "nats.pid");
  await reapOrphan(pidFile, conf, options.log);
  const port = options.port === 0 ? await freePort() : options.port;
  if (!(await portIsFree(port))) {
    throw new StartupError(
      StartupErrorCode.PortInUse,
      `port ${port} (DV_NATS_PORT) is already in use, so dv dev cannot start its nats-server`,
      "stop what uses it, set DV_NATS_PORT to a free port, or set NATS_URL to use a running nats-server",
    );
  }
  writeFileSync(
    conf,
    [
      "# Written by dv dev at every start; edits are overwritten.",
      `server_name: ${options.serverName ?? "dv-dev"}`,
      `listen: 127.0.0.1:${port}`,
      `pid_file: ${JSON.stringify(pidFile)}`,
      "max_payload: 8MB",
      "jetstream {",
      `  store_dir: ${JSON.stringify(storeDir)}`,
      "  max_memory_store: 256MB",
      "  max_file_store: 4GB",
      "  # fsync every second: the outbox keeps what a crash could lose (ADR 0012)",
      "  sync_interval: 1s",
      ...(options.domain ? [`  domain: ${options.domain}`] : []),
      "}",
      ...(options.leafPort !== undefined
        ? [
            "leafnodes {",
            `  listen: 127.0.0.1:${options.leafPort}`,
            // A leaf reconnects only where it was told to, never to addresses this server
            // gossips: the site link is one path, which an operator (or a test) controls.
            "  no_advertise: true",
            "}",
          ]
        : []),
      ...(options.leafRemote
        ? [
            "leafnodes {",
            "  remotes: [",
            "    {",
            `      url: ${JSON.stringify(options.leafRemote)}`,
            `      deny_imports: ${JSON.stringify(SITE_LOCAL_SUBJECTS)}`,
            `      deny_exports: ${JSON.stringify(SITE_LOCAL_SUBJECTS)}`,
            "    }",
            "  ]",
            "}",
          ]
        : []),
      "",
    ].join("\n"),
  );

  const child = spawn(bin, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  // If this process exits for any reason it can still act on (an uncaught error, process.exit),
  // the server goes with it; after a SIGKILL, the next start reaps it through the pid file.
  const killOnExit = (): void => void child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const exited = new Promise<void>((done) =>
    child.once("exit", () => {
      process.off("exit", killOnExit);
      done();
    }),
  );
  const log = options.log.child({ component: "nats-server", pid: child.pid });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) => log.debug({ line }, "nats-server"));
  }

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await waitForPort(port, child, options.startTimeoutMs ?? 15_000);
  } catch (err) {
    await stop();
    throw new StartupError(
      StartupErrorCode.NatsServerFailed,
      `nats-server ${version} (${bin}) did not start: ${(err as Error).message}`,
      "run with DV_LOG_LEVEL=debug to see its log, or set NATS_URL to a running server",
      { cause: err },
    );
  }
  log.info({ version, port, storeDir }, "nats-server started");
  return { url: `nats://127.0.0.1:${port}`, pid: child.pid ?? -1, version, stop };
}
