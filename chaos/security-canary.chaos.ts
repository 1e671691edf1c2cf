// Secrets never reach the logs, of any process. A canary secret is planted in the configuration
// (the database password; in a split deployment also the NATS password and the userinfo of an
// OTLP endpoint that refuses connections, so exporting fails), in request headers (bearer token,
// cookie, API key), in the query string, in bodies accepted and refused, and in a refused token —
// then every line every process wrote, at trace level, is searched for it: `dv dev` (everything
// in one process), and `dv controller`, `dv worker` and `dv api` as separate processes that carry
// a network (full: one resource of every kind, through all four workers) to `succeeded` and stop.
// Also: the logs carry the correlation, task and tenant ids along a network's work.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchKey } from "../bench/support/dv.js";
import { freePort } from "../src/dev/index.js";
import type { WorkerService } from "../src/messaging/index.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { type DvProcess, startDv } from "../test/support/process.js";
import { databaseUrl } from "../test/support/template.js";
import { record, size } from "./support/report.js";

const CANARY = "canary-7f3e9a1c5b";

let t: TestDatabase;
let dev: DvProcess;
let devApi: string;
let devToken: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), "dv-canary-"));
  const port = await freePort();
  dev = startDv(["dev"], {
    DATABASE_URL: withPassword(databaseUrl(t.name)),
    DV_HTTP_PORT: String(port),
    DV_NATS_PORT: String(await freePort()),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "trace",
  });
  devToken = (await dev.waitFor(/export DV_TOKEN=(\S+)/, 90_000))[1] ?? "";
  devApi = `http://127.0.0.1:${port}/api/v1`;
}, 120_000);

afterAll(async () => {
  if (dev?.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
  await t?.drop();
});

/** The URL with the canary as its password (the test servers trust loopback: any one works). */
function withPassword(url: string, user?: string): string {
  const u = new URL(url);
  if (user !== undefined) u.username = user;
  u.password = CANARY;
  return u.toString();
}

/** Calls `api` with the canary in a cookie and an API key header besides the bearer token. */
function sender(api: string, token: string) {
  return (path: string, init: RequestInit = {}) =>
    fetch(`${api}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        cookie: `session=${CANARY}`,
        "x-api-key": CANARY,
        ...(init.headers as Record<string, string> | undefined),
      },
    });
}

/**
 * The canary in a refused bearer token, the query string, and bodies accepted and refused; each
 * answered as documented. Returns how many requests carried it.
 */
async function plantInRequests(api: string, token: string, tenantName: string): Promise<number> {
  const send = sender(api, token);
  expect((await send("/tenants", { headers: { authorization: `Bearer ${CANARY}` } })).status).toBe(
    401,
  );
  expect((await send(`/tenants?cursor=${CANARY}`)).status).toBe(400);
  expect((await send(`/tenants?labelSelector=token%3D${CANARY}`)).status).toBe(200);
  expect(
    (
      await send("/tenants", {
        method: "POST",
        body: JSON.stringify({ name: tenantName, displayName: CANARY, labels: { key: CANARY } }),
      })
    ).status,
  ).toBe(201);
  expect(
    (
      await send("/tenants", {
        method: "POST",
        body: JSON.stringify({ name: "x", password: CANARY }),
      })
    ).status,
  ).toBe(400);
  expect((await send("/tenants", { method: "POST", body: `{"name": "${CANARY}` })).status).toBe(
    400,
  );
  return 6;
}

/** Creates a project and an environment of `tenant`, then `kinds`; the ids of their tasks. */
async function requestWork(
  api: string,
  token: string,
  tenant: string,
  kinds: readonly { path: string; spec: Record<string, unknown> }[],
): Promise<{ tenantId: string; tasks: { id: string; correlationId: string }[] }> {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const r = await fetch(`${api}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return (await r.json()) as T;
  };
  const found = await call<{ metadata: { id: string } }>("GET", `/tenants/${tenant}`);
  const base = `/tenants/${found.metadata.id}`;
  const project = await call<{ metadata: { id: string } }>("POST", `${base}/projects`, {
    name: "p",
  });
  const env = await call<{ metadata: { id: string } }>(
    "POST",
    `${base}/projects/${project.metadata.id}/environments`,
    { name: "e", datacenter: "dc1" },
  );
  const tasks: { id: string; correlationId: string }[] = [];
  for (const kind of kinds) {
    const task = await call<{ id: string; correlationId: string }>(
      "POST",
      `${base}/projects/${project.metadata.id}/environments/${env.metadata.id}/${kind.path}`,
      { name: kind.path.slice(0, -1), spec: kind.spec },
    );
    expect(task.id, JSON.stringify(task)).toMatch(/^[0-9a-f-]{36}$/);
    tasks.push(task);
  }
  return { tenantId: found.metadata.id, tasks };
}

/** Polls the task through the API until it ends; its last state. */
async function taskEnds(api: string, token: string, tenantId: string, id: string) {
  let state = "";
  for (let i = 0; i < 600; i++) {
    const r = await fetch(`${api}/tenants/${tenantId}/tasks/${id}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    state = ((await r.json()) as { state: string }).state;
    if (["succeeded", "failed", "cancelled"].includes(state)) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return state;
}

/** Every line of every process, with the process it came from. */
interface Logged {
  readonly process: string;
  readonly lines: readonly string[];
}

const linesOf = (process: string, p: DvProcess): Logged => ({
  process,
  lines: `${p.stdout()}\n${p.stderr()}`.split("\n").filter(Boolean),
});

/** The processes of a split deployment on `plane`, each with the canary in its configuration. */
async function splitDeployment(
  plane: Plane,
  workers: readonly WorkerService[],
  env: Record<string, string>,
): Promise<{ api: string; processes: Map<string, DvProcess & { port: number }> }> {
  const processes = new Map<string, DvProcess & { port: number }>();
  processes.set("dv controller", await plane.spawn(["controller"], env));
  for (const service of workers)
    processes.set(`dv worker ${service}`, await plane.spawn(["worker", "--service", service], env));
  const api = await plane.spawn(["api"], env);
  processes.set("dv api", api);
  return { api: `http://127.0.0.1:${api.port}/api/v1`, processes };
}

/** Stops a process the way Kubernetes does (SIGTERM) and waits, so its shutdown is logged too. */
async function stop(p: DvProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 30_000);
  await p.exited;
  clearTimeout(timer);
}

/** One resource of every kind, and the worker that builds it. */
const KINDS: readonly {
  readonly path: string;
  readonly spec: Record<string, unknown>;
  readonly service: WorkerService;
}[] = [
  { path: "networks", spec: { prefixLength: 26 }, service: "nett" },
  { path: "servers", spec: { machineClass: "m1-large" }, service: "maskin" },
  { path: "clusters", spec: { machineClass: "m1-large", workers: 1 }, service: "plattform" },
  { path: "buckets", spec: { quotaGiB: 5 }, service: "objekt" },
];

describe("logs", () => {
  it("never contain a secret, wherever it was planted, in any process", async () => {
    let planted = 0;
    const logged: Logged[] = [];
    const correlationIds: string[] = [];

    // ---- dv dev: the whole control plane in one process
    planted += 1 + (await plantInRequests(devApi, devToken, "acme"));
    // Let the request logs flush.
    await new Promise((r) => setTimeout(r, 500));
    const devLines = linesOf("dv dev", dev);
    logged.push(devLines);

    // ---- a split deployment: controller, workers and API as separate processes
    const kinds = size(KINDS, KINDS.slice(0, 1));
    const plane = await startPlane({});
    try {
      const key = await benchKey();
      const env = {
        ...key.env,
        DATABASE_URL: withPassword(databaseUrl(plane.t.name)),
        NATS_URL: withPassword(plane.nats.url, "dv"),
        // Nothing listens there: exporting spans fails, and the failure is logged at shutdown.
        OTEL_EXPORTER_OTLP_ENDPOINT: withPassword(`http://127.0.0.1:${await freePort()}`, "otel"),
        DV_TRACE_SAMPLE_RATIO: "1",
        DV_LOG_LEVEL: "trace",
      };
      const split = await splitDeployment(
        plane,
        kinds.map((k) => k.service),
        env,
      );
      const operator = await key.token("operator");
      planted += 3 * split.processes.size + (await plantInRequests(split.api, operator, "acme"));
      const admin = await key.token("tenant-admin", "acme");
      const work = await requestWork(split.api, admin, "acme", kinds);
      correlationIds.push(...work.tasks.map((t) => t.correlationId));
      const states = [];
      for (const task of work.tasks)
        states.push(await taskEnds(split.api, admin, work.tenantId, task.id));
      expect(states).toEqual(kinds.map(() => "succeeded"));
      for (const p of split.processes.values()) await stop(p);
      for (const [name, p] of split.processes) logged.push(linesOf(name, p));
    } finally {
      await plane.close();
    }

    const leaks = logged.flatMap((l) =>
      l.lines.filter((line) => line.includes(CANARY)).map((line) => `${l.process}: ${line}`),
    );
    const searched = logged.reduce((n, l) => n + l.lines.length, 0);
    record({
      scenario: "security-canary",
      faults: planted,
      operations: searched,
      lost: 0,
      duplicated: 0,
      violations: leaks.length,
      figures: { processes: logged.length, log_lines: searched },
    });
    // The search looked at something: every process logged its start and stop, the APIs their
    // requests, and the controller and each worker the work they did.
    for (const l of logged)
      expect(l.lines.length, l.process).toBeGreaterThan(l.process === "dv dev" ? 20 : 10);
    for (const l of logged.filter((l) => l.process === "dv dev" || l.process === "dv api"))
      expect(
        l.lines.filter((line) => line.includes('"/api/v1/tenants')).length,
        l.process,
      ).toBeGreaterThanOrEqual(5);
    for (const l of logged.filter((l) => l.process !== "dv dev" && l.process !== "dv api"))
      expect(
        l.lines.some((line) => correlationIds.some((id) => line.includes(id))),
        l.process,
      ).toBe(true);
    // Query parameters are named, their values hidden.
    expect(devLines.lines.some((l) => l.includes('"url":"/api/v1/tenants?cursor=…"'))).toBe(true);
    expect(leaks).toEqual([]);
  });

  it("carry the correlation, task and tenant ids along a network's work", async () => {
    const tenant = await fetch(`${devApi}/tenants`, {
      method: "POST",
      headers: { authorization: `Bearer ${devToken}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ids" }),
    });
    expect(tenant.status).toBe(201);
    const work = await requestWork(devApi, devToken, "ids", KINDS.slice(0, 1));
    const task = work.tasks[0];
    if (task === undefined) throw new Error("no task");
    expect(await taskEnds(devApi, devToken, work.tenantId, task.id)).toBe("succeeded");
    const lines = dev
      .stdout()
      .split("\n")
      .filter((l) => l.includes(`"task_id":"${task.id}"`));
    const components = new Set(
      lines.map(
        (l) =>
          (JSON.parse(l) as { component?: string; controller?: string }).controller ??
          (JSON.parse(l) as { component?: string }).component ??
          "worker",
      ),
    );
    expect(
      lines.length,
      dev
        .stdout()
        .split("\n")
        .filter((l) => l.includes(task.correlationId))
        .join("\n")
        .slice(0, 3000),
    ).toBeGreaterThan(0);
    for (const l of lines) {
      const entry = JSON.parse(l) as Record<string, unknown>;
      expect(entry.correlation_id).toBe(task.correlationId);
      expect(entry.tenant_id).toBe(work.tenantId);
    }
    // Both sides of the work: the reconciler and the worker.
    expect(components.has("network")).toBe(true);
    expect(lines.some((l) => l.includes('"message_id"'))).toBe(true);
  });
});
