// `dv dev` as users run it: a real child process, real PGlite, a real nats-server it spawns, or
// the test PostgreSQL and nats-server when DATABASE_URL / NATS_URL are set.
import { createServer, type Server } from "node:net";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../dev/index.js";
import { type DvProcess, processExists, runDv, startDv } from "../../test/support/process.js";
import { TEST_DATABASE_URL, TEST_NATS_URL } from "../../test/support/services.js";

const running: DvProcess[] = [];
const servers: Server[] = [];

afterEach(async () => {
  for (const proc of running.splice(0)) {
    if (proc.child.exitCode === null && proc.child.signalCode === null) {
      // As a user would: Ctrl-C, and only if that does not work, SIGKILL.
      proc.child.kill("SIGINT");
      const timer = setTimeout(() => proc.child.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
    }
  }
  for (const server of servers.splice(0)) await new Promise((r) => server.close(r));
});

async function isolatedEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const dir = mkdtempSync(join(tmpdir(), "dv-dev-"));
  return {
    DV_HTTP_PORT: String(await freePort()),
    DV_NATS_PORT: String(await freePort()),
    DV_PGLITE_DIR: join(dir, "pglite"),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_LOG_LEVEL: "info",
    ...extra,
  };
}

/** Pids of nats-server processes whose command line mentions `dir`. */
function natsServersUsing(dir: string): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        return cmdline.includes("nats-server") && cmdline.includes(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.text() };
}

describe("dv dev", () => {
  it("serves health, readiness and metrics on embedded defaults, and Ctrl-C leaves no child behind", async () => {
    const env = await isolatedEnv();
    const dev = startDv(["dev"], env);
    running.push(dev);
    const [, natsPid] = await dev.waitFor(
      /NATS\s+nats:\/\/127\.0\.0\.1:\d+ \(embedded, pid (\d+)\)/,
    );
    const base = `http://127.0.0.1:${env.DV_HTTP_PORT}`;

    expect(await get(`${base}/healthz`)).toEqual({ status: 200, body: '{"status":"ok"}' });
    const ready = await get(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({
      status: "ready",
      checks: { postgres: "ok", nats: "ok" },
    });
    const metrics = await get(`${base}/metrics`);
    expect(metrics.body).toContain(
      'dataverket_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1',
    );
    expect(metrics.body).toContain("process_cpu_seconds_total");

    // Every stdout line is JSON with the service and datacenter on it.
    const lines = dev
      .stdout()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines)
      expect(line).toMatchObject({ service: "dv-dev", datacenter_id: "dc1" });

    expect(processExists(Number(natsPid))).toBe(true);
    dev.child.kill("SIGINT");
    expect(await dev.exited).toBe(0);
    expect(processExists(Number(natsPid))).toBe(false);
  });

  it("uses the PostgreSQL and NATS servers named by DATABASE_URL and NATS_URL", async () => {
    const env = await isolatedEnv({ DATABASE_URL: TEST_DATABASE_URL, NATS_URL: TEST_NATS_URL });
    const dev = startDv(["dev"], env);
    running.push(dev);
    await dev.waitFor(/Dataverket control plane is running/);
    expect(dev.stderr()).toContain(`NATS       ${TEST_NATS_URL}\n`);
    expect(dev.stderr()).toMatch(/database   127\.0\.0\.1:\d+\/postgres/);
    const ready = await get(`http://127.0.0.1:${env.DV_HTTP_PORT}/readyz`);
    expect(JSON.parse(ready.body)).toEqual({
      status: "ready",
      checks: { postgres: "ok", nats: "ok" },
    });
    dev.child.kill("SIGTERM");
    expect(await dev.exited).toBe(0);
  });

  it("refuses bad configuration before starting anything, naming each variable", async () => {
    const env = await isolatedEnv({ DV_HTTP_PORT: "http", DV_LOG_LEVEL: "chatty" });
    const result = await runDv(["dev"], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      'DV_HTTP_PORT: must be an integer from 0 to 65535 (got "http")',
    );
    expect(result.stderr).toContain("DV_LOG_LEVEL: must be one of");
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).toBe("");
  });

  it("says in one line that the HTTP port is taken", async () => {
    const env = await isolatedEnv();
    const blocker = createServer();
    servers.push(blocker);
    await new Promise<void>((r) => blocker.listen(Number(env.DV_HTTP_PORT), "127.0.0.1", r));
    const result = await runDv(["dev"], env);
    expect(result.code).toBe(3);
    expect(result.stderr).toBe(
      `dv: error: port ${env.DV_HTTP_PORT} (DV_HTTP_PORT) on 127.0.0.1 is already in use (stop what uses it or set DV_HTTP_PORT to another port)\n`,
    );
  });

  it("says in one line that PostgreSQL is unreachable, and stops what it had started", async () => {
    const closed = await freePort();
    const env = await isolatedEnv({
      DATABASE_URL: `postgres://dv:s3cret-canary@127.0.0.1:${closed}/dv`,
    });
    const result = await runDv(["dev"], env);
    expect(result.code).toBe(3);
    const errorLines = result.stderr.trim().split("\n");
    expect(errorLines).toHaveLength(1);
    expect(errorLines[0]).toContain(
      `cannot reach PostgreSQL at 127.0.0.1:${closed}/dv (DATABASE_URL): ECONNREFUSED`,
    );
    expect(result.stderr + result.stdout).not.toContain("s3cret-canary");
  });

  it("says in one line that NATS is unreachable", async () => {
    const closed = await freePort();
    const env = await isolatedEnv({
      DATABASE_URL: TEST_DATABASE_URL,
      NATS_URL: `nats://127.0.0.1:${closed}`,
    });
    const result = await runDv(["dev"], env);
    expect(result.code).toBe(3);
    expect(result.stderr.trim().split("\n")).toEqual([
      expect.stringContaining(
        `cannot reach NATS at nats://127.0.0.1:${closed} (NATS_URL): ECONNREFUSED`,
      ),
    ]);
  });

  it("Ctrl-C in the middle of startup stops what was started and exits cleanly", async () => {
    const env = await isolatedEnv();
    const dev = startDv(["dev"], env);
    running.push(dev);
    await dev.waitFor(/"msg":"database connected"/);
    dev.child.kill("SIGINT");
    const code = await dev.exited;
    expect(dev.stderr()).not.toContain("control plane is running");
    expect(code, dev.stderr()).toBe(0);
    expect(natsServersUsing(env.DV_NATS_STORE_DIR ?? "")).toEqual([]);
  });

  it("after a SIGKILL, the next dv dev stops the nats-server the killed one left behind", async () => {
    const env = await isolatedEnv();
    const first = startDv(["dev"], env);
    running.push(first);
    const [, orphanPid] = await first.waitFor(/embedded, pid (\d+)/);
    first.child.kill("SIGKILL");
    await first.exited;
    expect(processExists(Number(orphanPid))).toBe(true);

    const second = startDv(["dev"], { ...env, DV_NATS_PORT: String(await freePort()) });
    running.push(second);
    await second.waitFor(/Dataverket control plane is running/);
    expect(processExists(Number(orphanPid))).toBe(false);
  });

  it("refuses a second dv dev on the same embedded database", async () => {
    const env = await isolatedEnv();
    const first = startDv(["dev"], env);
    running.push(first);
    await first.waitFor(/Dataverket control plane is running/);
    const second = await runDv(["dev"], {
      ...env,
      DV_HTTP_PORT: String(await freePort()),
      DV_NATS_PORT: String(await freePort()),
    });
    expect(second.code).toBe(3);
    expect(second.stderr).toContain(
      `the embedded database ${env.DV_PGLITE_DIR} is in use by process ${first.child.pid}`,
    );
  });
});
