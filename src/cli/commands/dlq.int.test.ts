// The operator's dead-letter loop with `npm run dev`, end to end and as users type it: watch the
// commands to nett with `dv tail`, make the nett driver fail with `dv sim fault`, create a
// network through the API, find its command in `dv dlq list`, clear the fault, `dv dlq replay`,
// and the network becomes Ready with its task succeeded.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../../test/support/backbone.js";
import { type DvProcess, runDv, startDv } from "../../../test/support/process.js";
import { freePort } from "../../dev/index.js";

let dev: DvProcess;
let env: Record<string, string>;
let api: string;
let token: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "dv-dlq-"));
  const natsPort = await freePort();
  env = {
    DV_HTTP_PORT: String(await freePort()),
    DV_NATS_PORT: String(natsPort),
    DV_PGLITE_DIR: join(dir, "pglite"),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "warn",
  };
  dev = startDv(["dev"], env);
  const banner = await dev.waitFor(/export DV_TOKEN=(\S+)/, 90_000);
  token = banner[1] ?? "";
  api = `http://127.0.0.1:${env.DV_HTTP_PORT}/api/v1`;
  env = {
    ...env,
    DV_SERVER: `http://127.0.0.1:${env.DV_HTTP_PORT}`,
    DV_TOKEN: token,
    NATS_URL: `nats://127.0.0.1:${natsPort}`,
  };
}, 120_000);

afterAll(async () => {
  if (dev.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
});

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

const dv = (...args: string[]) => runDv(args, env);

describe("dv dlq and dv sim with npm run dev", () => {
  it("a network whose driver fails ends in dv dlq list; dv dlq replay after clearing the fault finishes it", async () => {
    const tenant = await call<{ metadata: { id: string } }>("POST", "/tenants", { name: "demo" });
    const base = `/tenants/${tenant.metadata.id}`;
    const project = await call<{ metadata: { id: string } }>("POST", `${base}/projects`, {
      name: "web",
    });
    const environment = await call<{ metadata: { id: string } }>(
      "POST",
      `${base}/projects/${project.metadata.id}/environments`,
      { name: "prod", datacenter: "dc1" },
    );

    const tail = startDv(["tail", "dv.nett.cmd.>", "--json", "--count", "1"], env);
    await tail.waitFor(/listening on dv\.nett\.cmd\.>/);

    const fault = await dv(
      "sim",
      "fault",
      "set",
      "--service",
      "nett",
      "--all",
      "--message",
      "switch offline",
    );
    expect(fault).toMatchObject({
      code: 0,
      stdout: "nett: every resource now fails until cleared\n",
    });

    // 202 with the task that builds the network.
    const task = await call<{ id: string; resource: { id: string } }>(
      "POST",
      `${base}/projects/${project.metadata.id}/environments/${environment.metadata.id}/networks`,
      { name: "net1", spec: { prefixLength: 28 } },
    );
    const networkId = task.resource.id;
    const taskId = task.id;

    // The command to nett, as it passed on NATS.
    expect(await tail.exited).toBe(0);
    const seen = JSON.parse(tail.stdout().trim()) as {
      subject: string;
      envelope: { type: string; data: { resource_id: string; task_id: string } };
    };
    expect(seen).toMatchObject({
      subject: "dv.nett.cmd.apply",
      envelope: { type: "nett.network.apply", data: { resource_id: networkId, task_id: taskId } },
    });

    await eventually(
      async () =>
        (await call<{ state: string }>("GET", `${base}/tasks/${taskId}`)).state === "failed"
          ? true
          : undefined,
      30_000,
      "the task to fail",
    );
    const listed = await dv("dlq", "list", "-o", "json");
    expect(listed.code).toBe(0);
    // The shape of every list: {"items": […]}.
    const letters = (
      JSON.parse(listed.stdout) as { items: { id: string; taskId: string; reason: string }[] }
    ).items;
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ taskId, reason: expect.stringContaining("switch offline") });
    const id = letters[0]!.id;
    const asTable = await dv("dlq", "list");
    expect(asTable.stdout).toMatch(
      new RegExp(
        `^ID\\s+STATE\\s+SERVICE[^\\n]*\\n${id}\\s+open\\s+nett\\s+dv\\.nett\\.cmd\\.apply`,
      ),
    );

    const metrics = async () =>
      (await (await fetch(`${env.DV_SERVER}/metrics`)).text())
        .split("\n")
        .filter((l) => l.startsWith("dataverket_dead_letters_open{"));
    expect(await metrics()).toEqual([
      'dataverket_dead_letters_open{service="nett",reason="permanent_failure"} 1',
    ]);

    expect((await dv("sim", "fault", "clear", "--service", "nett", "--all")).stdout).toBe(
      "nett: 1 fault(s) cleared\n",
    );
    const replay = await dv("dlq", "replay", id, "--reason", "the switch is back");
    expect(replay.code).toBe(0);
    expect(replay.stdout).toMatch(
      new RegExp(`^dead letter ${id} replayed as message \\S+; task ${taskId} is queued again\\n$`),
    );

    await eventually(
      async () =>
        (await call<{ state: string }>("GET", `${base}/tasks/${taskId}`)).state === "succeeded"
          ? true
          : undefined,
      30_000,
      "the task to succeed after the replay",
    );
    const network = await call<{ status: { conditions: { type: string; status: string }[] } }>(
      "GET",
      `${base}/projects/${project.metadata.id}/environments/${environment.metadata.id}/networks/${networkId}`,
    );
    expect(network.status.conditions).toContainEqual(
      expect.objectContaining({ type: "Ready", status: "True" }),
    );

    expect(await metrics()).toEqual([]);

    // Nothing twice, in one readable line and a conflict exit code.
    const again = await dv("dlq", "replay", id, "--reason", "again");
    expect(again.code).toBe(5);
    expect(again.stderr.trim().split("\n")).toEqual([
      `dv: error: POST /api/v1/dead-letters/${id}/replay answered 409: dead letter ${id} cannot go from replayed to replayed`,
    ]);
  }, 180_000);

  it("says in one line what is wrong with a command line, and exits non-zero", async () => {
    const badId = await dv("dlq", "show", "nope");
    expect(badId).toMatchObject({ code: 2 });
    expect(badId.stderr).toBe(
      'dv: error: "nope" is not a dead-letter id (a UUID, as dv dlq list shows it)\n',
    );
    const noTarget = await dv("sim", "fault", "set", "--service", "nett");
    expect(noTarget).toMatchObject({
      code: 2,
      stderr: "dv: error: --resource <id> or --all is required\n",
    });
    const anonymous = await runDv(["dlq", "list"], { ...env, DV_TOKEN: "" });
    expect(anonymous.code).toBe(1);
    expect(anonymous.stderr).toMatch(
      /^dv: error: GET \/api\/v1\/dead-letters answered 401: .*pass --token, set DV_TOKEN, or use a context with a token/,
    );
    const noApi = await runDv(["dlq", "list"], { ...env, DV_SERVER: "http://127.0.0.1:1" });
    expect(noApi).toMatchObject({
      code: 3,
      stderr:
        "dv: error: cannot reach the API at http://127.0.0.1:1: start it (npm run dev) or pass --server\n",
    });
  }, 60_000);
});
