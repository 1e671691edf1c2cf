// Secrets never reach the logs: a canary secret planted in the configuration (the database
// password), in request headers (bearer token, cookie, API key), in the query string, in bodies,
// and in errors (a failing command's message is the driver's, not a secret — but a refused token
// is) — then every line the process wrote, at debug level, is searched for it.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { type DvProcess, startDv } from "../../test/support/process.js";
import { databaseUrl } from "../../test/support/template.js";
import { freePort } from "../dev/index.js";

const CANARY = "canary-7f3e9a1c5b";

let t: TestDatabase;
let dev: DvProcess;
let api: string;
let token: string;

beforeAll(async () => {
  t = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), "dv-canary-"));
  const port = await freePort();
  // The test server trusts loopback, so any password works: the canary is the password.
  const url = new URL(databaseUrl(t.name));
  url.password = CANARY;
  dev = startDv(["dev"], {
    DATABASE_URL: url.toString(),
    DV_HTTP_PORT: String(port),
    DV_NATS_PORT: String(await freePort()),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "trace",
  });
  token = (await dev.waitFor(/export DV_TOKEN=(\S+)/, 90_000))[1] ?? "";
  api = `http://127.0.0.1:${port}/api/v1`;
}, 120_000);

afterAll(async () => {
  if (dev?.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
  await t?.drop();
});

describe("logs", () => {
  it("never contain a secret, wherever it was planted", async () => {
    const send = (path: string, init: RequestInit = {}) =>
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
    // A refused bearer token.
    expect(
      (await send("/tenants", { headers: { authorization: `Bearer ${CANARY}` } })).status,
    ).toBe(401);
    // The query string.
    expect((await send(`/tenants?cursor=${CANARY}`)).status).toBe(400);
    expect((await send(`/tenants?labelSelector=token%3D${CANARY}`)).status).toBe(200);
    // Bodies: accepted, and refused.
    expect(
      (
        await send("/tenants", {
          method: "POST",
          body: JSON.stringify({ name: "acme", displayName: CANARY, labels: { key: CANARY } }),
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

    // Let the request logs flush.
    await new Promise((r) => setTimeout(r, 500));
    const lines = `${dev.stdout()}\n${dev.stderr()}`.split("\n");
    expect(lines.length).toBeGreaterThan(20);
    // The requests were logged (so the search looked at something).
    expect(lines.filter((l) => l.includes('"/api/v1/tenants')).length).toBeGreaterThanOrEqual(5);
    // Query parameters are named, their values hidden.
    expect(lines.some((l) => l.includes('"url":"/api/v1/tenants?cursor=…"'))).toBe(true);
    expect(lines.filter((l) => l.includes(CANARY))).toEqual([]);
  });

  it("carry the correlation, task and tenant ids along a network's work", async () => {
    const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const r = await fetch(`${api}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return (await r.json()) as T;
    };
    const tenant = await call<{ metadata: { id: string } }>("POST", "/tenants", { name: "ids" });
    const base = `/tenants/${tenant.metadata.id}`;
    const project = await call<{ metadata: { id: string } }>("POST", `${base}/projects`, {
      name: "p",
    });
    const env = await call<{ metadata: { id: string } }>(
      "POST",
      `${base}/projects/${project.metadata.id}/environments`,
      { name: "e", datacenter: "dc1" },
    );
    const task = await call<{ id: string; correlationId: string }>(
      "POST",
      `${base}/projects/${project.metadata.id}/environments/${env.metadata.id}/networks`,
      { name: "n", spec: {} },
    );
    expect(task.id, JSON.stringify(task)).toMatch(/^[0-9a-f-]{36}$/);
    for (let i = 0; i < 100; i++) {
      const t = await call<{ state: string }>("GET", `${base}/tasks/${task.id}`);
      if (t.state === "succeeded") break;
      await new Promise((r) => setTimeout(r, 100));
    }
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
      expect(entry.tenant_id).toBe(tenant.metadata.id);
    }
    // Both sides of the work: the reconciler and the worker.
    expect(components.has("network")).toBe(true);
    expect(lines.some((l) => l.includes('"message_id"'))).toBe(true);
  });
});
