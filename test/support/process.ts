import { join } from "node:path";
import { tmpdir } from "node:os";
// Helpers to run `dv` as a real child process, the way users run it.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** Absolute path of the `dv` launcher in this checkout. */
export const DV_BIN = fileURLToPath(new URL("../../bin/dv.js", import.meta.url));

/** A running `dv` process with everything it printed so far. */
export interface DvProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** Resolves when stderr or stdout matches `pattern`; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

/** Starts `dv <args>` with exactly `env` (plus PATH and HOME) as its environment. */
export function startDv(
  args: readonly string[],
  env: Record<string, string>,
  options: { cwd?: string } = {},
): DvProcess {
  // DV_TEST_NODE_ARGS passes flags to the child's node (say `--cpu-prof` to profile it).
  const nodeArgs = process.env.DV_TEST_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, DV_BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      // Never the developer's own ~/.config/dataverket (dv dev writes its context there).
      DV_CLI_CONFIG: join(tmpdir(), `dv-test-cli-${process.pid}.yaml`),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor(pattern, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const deadline = Date.now() + timeoutMs;
        const poll = (): void => {
          const match = err.match(pattern) ?? out.match(pattern);
          if (match) return resolve(match);
          if (child.exitCode !== null || child.signalCode !== null) {
            return reject(
              new Error(
                `dv exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${err}`,
              ),
            );
          }
          if (Date.now() > deadline)
            return reject(new Error(`timed out waiting for ${pattern}:\n${err}`));
          setTimeout(poll, 50);
        };
        poll();
      });
    },
  };
}

/** Runs `dv <args>` to completion and returns its exit code and output. */
export async function runDv(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
  options: { cwd?: string } = {},
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const proc = startDv(args, env, options);
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, stdout: proc.stdout(), stderr: proc.stderr() };
}

/** True when a process with this pid exists. */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
