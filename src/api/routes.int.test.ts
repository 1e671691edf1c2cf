import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApiHarness,
  expectProblem,
  type Seeded,
  seedTenant,
  startApi,
} from "../../test/support/api.js";
import { inTransaction } from "../db/index.js";
import { packageRoot } from "../meta/index.js";
import { RESOURCE_SCHEMAS } from "./schemas.js";

let api: ApiHarness;
let acme: Seeded;
let operator: string;

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator");
  acme = await seedTenant(api, "acme");
});
afterAll(async () => api.close());

const envPath = (s: Seeded) =>
  `/api/v1/tenants/${s.tenant.id}/projects/${s.project.id}/environments/${s.environment.id}`;

describe("tenancy", () => {
  it("lets a tenant admin create a project and an environment, by name or id, with ETags", async () => {
    const byName = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/projects/acme-web/environments/acme-prod`,
    });
    expect(byName.statusCode).toBe(200);
    expect(byName.headers.etag).toBe('"1"');
    expect(byName.json()).toMatchObject({
      kind: "Environment",
      metadata: { id: acme.environment.id, name: "acme-prod" },
      spec: { datacenter: "dc1" },
    });
  });

  it("refuses an environment in a datacenter that does not exist, naming it", async () => {
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects/acme-web/environments`,
      payload: { name: "moon", datacenter: "moon-1" },
    });
    const body = expectProblem(response, 422, "invalid-reference");
    expect(body.detail).toBe('there is no datacenter "moon-1"; the platform has: "dc1"');
    expect(body.errors).toEqual([{ pointer: "/body/datacenter", message: body.detail }]);
  });

  it("rejects unknown fields and bad values with field-level errors", async () => {
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/${acme.tenant.id}/projects`,
      payload: { name: "Not A Label", owner: "me" },
    });
    const body = expectProblem(response, 400, "invalid-request");
    expect(body.errors).toEqual(
      expect.arrayContaining([
        { pointer: "/body/name", message: expect.stringContaining("DNS label") as string },
        { pointer: "/body/owner", message: "unknown field; remove it" },
      ]),
    );
  });

  it("keeps tenants for operators", async () => {
    expectProblem(
      await api.call(acme.adminToken, { method: "GET", url: "/api/v1/tenants" }),
      403,
      "forbidden",
    );
    expectProblem(
      await api.call(acme.adminToken, {
        method: "POST",
        url: "/api/v1/tenants",
        payload: { name: "mine" },
      }),
      403,
      "forbidden",
    );
    const list = await api.call(operator, { method: "GET", url: "/api/v1/tenants" });
    expect(
      list.json<{ items: { metadata: { name: string } }[] }>().items.map((t) => t.metadata.name),
    ).toContain("acme");
  });

  it("pages with an opaque cursor and filters with label selectors", async () => {
    for (const [i, tier] of ["gold", "silver", "gold", "bronze", "gold"].entries()) {
      const r = await api.call(acme.adminToken, {
        method: "POST",
        url: `/api/v1/tenants/acme/projects`,
        payload: { name: `paged-${i}`, labels: { tier, batch: "paging" } },
      });
      expect(r.statusCode).toBe(201);
    }
    const names: string[] = [];
    let cursor: string | undefined;
    do {
      const r = await api.call(acme.adminToken, {
        method: "GET",
        url: `/api/v1/tenants/acme/projects`,
        query: { limit: "2", labelSelector: "batch=paging", ...(cursor ? { cursor } : {}) },
      });
      const page = r.json<{ items: { metadata: { name: string } }[]; nextCursor?: string }>();
      names.push(...page.items.map((p) => p.metadata.name));
      cursor = page.nextCursor;
    } while (cursor);
    expect(names).toEqual(["paged-0", "paged-1", "paged-2", "paged-3", "paged-4"]);
    const gold = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/projects`,
      query: { labelSelector: "tier in (gold),batch=paging" },
    });
    expect(gold.json<{ items: unknown[] }>().items).toHaveLength(3);
    expectProblem(
      await api.call(acme.adminToken, {
        method: "GET",
        url: `/api/v1/tenants/acme/projects`,
        query: { cursor: "bogus" },
      }),
      400,
      "invalid-request",
    );
    expectProblem(
      await api.call(acme.adminToken, {
        method: "GET",
        url: `/api/v1/tenants/acme/projects`,
        query: { labelSelector: "a in (" },
      }),
      400,
      "invalid-request",
    );
  });

  it("requires If-Match, refuses a stale one with 412, and applies a current one", async () => {
    const url = `/api/v1/tenants/acme/projects/acme-web`;
    expectProblem(
      await api.call(acme.adminToken, { method: "PATCH", url, payload: { displayName: "Web" } }),
      428,
      "precondition-required",
    );
    const ok = await api.call(acme.adminToken, {
      method: "PATCH",
      url,
      headers: { "if-match": '"1"' },
      payload: { displayName: "Web" },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers.etag).toBe('"2"');
    const stale = await api.call(acme.adminToken, {
      method: "PATCH",
      url,
      headers: { "if-match": '"1"' },
      payload: { displayName: "Lost update" },
    });
    expect(expectProblem(stale, 412, "precondition-failed").detail).toContain(
      "is at version 2, not 1",
    );
    expect((await api.call(acme.adminToken, { method: "GET", url })).json()).toMatchObject({
      spec: { displayName: "Web" },
    });
  });
});

describe("infrastructure resources", () => {
  it("answers a create with 202, the task and its Location; the task links back to the resource", async () => {
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "backend", labels: { tier: "db" }, spec: { prefixLength: 27 } },
    });
    expect(response.statusCode).toBe(202);
    const task = response.json<{
      id: string;
      state: string;
      operation: string;
      resource: { id: string; href: string };
    }>();
    expect(task).toMatchObject({ kind: "Task", state: "created", operation: "network.create" });
    expect(response.headers.location).toBe(`/api/v1/tenants/${acme.tenant.id}/tasks/${task.id}`);
    const followed = await api.call(acme.adminToken, {
      method: "GET",
      url: String(response.headers.location),
    });
    expect(followed.json()).toMatchObject({
      id: task.id,
      history: [{ seq: 1, verb: "created", actor: "user:tenant-admin-user" }],
    });
    const network = await api.call(acme.adminToken, { method: "GET", url: task.resource.href });
    expect(network.statusCode).toBe(200);
    // Written without the schema's check at run time: it must still be what the schema says.
    expect(network.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(RESOURCE_SCHEMAS.networks.resource.safeParse(network.json()).error).toBeUndefined();
    expect(network.json()).toMatchObject({
      kind: "Network",
      metadata: { name: "backend", generation: 1, labels: { tier: "db" } },
      spec: { prefixLength: 27 },
      status: { observedGeneration: 0, conditions: [] },
    });
    const byName = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/projects/acme-web/environments/acme-prod/networks/backend`,
    });
    expect(byName.json()).toMatchObject({ metadata: { id: task.resource.id } });
  });

  it("fills spec defaults and refuses out-of-range values, naming the field", async () => {
    const defaulted = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "defaults", spec: {} },
    });
    const { resource } = defaulted.json<{ resource: { href: string } }>();
    expect(
      (await api.call(acme.adminToken, { method: "GET", url: resource.href })).json(),
    ).toMatchObject({ spec: { prefixLength: 24 } });
    const bad = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "tiny", spec: { prefixLength: 31 } },
    });
    expect(expectProblem(bad, 400, "invalid-request").errors).toEqual([
      { pointer: "/body/spec/prefixLength", message: expect.stringContaining("29") as string },
    ]);
  });

  it("refuses a second resource of the same kind and name in an environment", async () => {
    const again = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: acme.network.name, spec: {} },
    });
    expect(expectProblem(again, 409, "already-exists").detail).toBe(
      `network "${acme.network.name}" already exists in this environment`,
    );
  });

  it("changes and deletes with If-Match, each answering 202 with a task", async () => {
    const url = `${envPath(acme)}/networks/${acme.network.id}`;
    const before = await api.call(acme.adminToken, { method: "GET", url });
    const patch = await api.call(acme.adminToken, {
      method: "PATCH",
      url,
      headers: { "if-match": String(before.headers.etag) },
      payload: { spec: { prefixLength: 25 } },
    });
    expect(patch.statusCode).toBe(202);
    expect(patch.json()).toMatchObject({
      operation: "network.update",
      resource: { generation: 2 },
    });
    const stale = await api.call(acme.adminToken, {
      method: "DELETE",
      url,
      headers: { "if-match": String(before.headers.etag) },
    });
    expectProblem(stale, 412, "precondition-failed");
    const current = await api.call(acme.adminToken, { method: "GET", url });
    const del = await api.call(acme.adminToken, {
      method: "DELETE",
      url,
      headers: { "if-match": String(current.headers.etag) },
    });
    expect(del.statusCode).toBe(202);
    expect(del.json()).toMatchObject({ operation: "network.delete" });
    const after = await api.call(acme.adminToken, { method: "GET", url });
    expect(
      after.json<{ metadata: { deletionRequestedAt: string | null } }>().metadata
        .deletionRequestedAt,
    ).not.toBeNull();
  });

  it("lets a reader look but not touch", async () => {
    const reader = await api.token("tenant-reader", "acme");
    expect(
      (await api.call(reader, { method: "GET", url: `${envPath(acme)}/networks` })).statusCode,
    ).toBe(200);
    const write = await api.call(reader, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "nope", spec: {} },
    });
    expect(expectProblem(write, 403, "forbidden").detail).toBe(
      "a tenant-reader token may not create networks",
    );
  });

  it("confines a project-scoped token to its project", async () => {
    const other = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects`,
      payload: { name: "secret-project" },
    });
    const otherId = other.json<{ metadata: { id: string } }>().metadata.id;
    const scoped = await api.token("tenant-admin", "acme", "acme-web");
    const list = await api.call(scoped, { method: "GET", url: `/api/v1/tenants/acme/projects` });
    expect(
      list.json<{ items: { metadata: { name: string } }[] }>().items.map((p) => p.metadata.name),
    ).toEqual(["acme-web"]);
    expectProblem(
      await api.call(scoped, { method: "GET", url: `/api/v1/tenants/acme/projects/${otherId}` }),
      404,
      "not-found",
    );
    expectProblem(
      await api.call(scoped, {
        method: "GET",
        url: `/api/v1/tenants/acme/projects/secret-project/environments`,
      }),
      404,
      "not-found",
    );
  });
});

describe("Idempotency-Key", () => {
  it("returns the first response for the same key and body, and 422 for another body", async () => {
    const request = {
      method: "POST" as const,
      url: `${envPath(acme)}/buckets`,
      headers: { "idempotency-key": "bucket-1" },
      payload: { name: "logs", spec: { quotaGiB: 10 } },
    };
    const first = await api.call(acme.adminToken, request);
    expect(first.statusCode).toBe(202);
    const second = await api.call(acme.adminToken, request);
    expect(second.statusCode).toBe(202);
    expect(second.headers["idempotent-replayed"]).toBe("true");
    expect(second.json()).toEqual(first.json());
    expect(second.headers.location).toBe(first.headers.location);
    const changed = await api.call(acme.adminToken, {
      ...request,
      payload: { name: "logs", spec: { quotaGiB: 20 } },
    });
    expectProblem(changed, 422, "idempotency-key-reused");
  });

  it("creates once when the same key races with itself", async () => {
    const request = {
      method: "POST" as const,
      url: `${envPath(acme)}/buckets`,
      headers: { "idempotency-key": "race-1" },
      payload: { name: "raced", spec: { quotaGiB: 1 } },
    };
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => api.call(acme.adminToken, request)),
    );
    const taskIds = new Set(responses.map((r) => r.json<{ id: string }>().id));
    expect(responses.map((r) => r.statusCode)).toEqual(Array(8).fill(202));
    expect(taskIds.size).toBe(1);
    const buckets = await api.t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM inventory.resources WHERE name = 'raced'",
    );
    expect(buckets).toEqual([{ n: 1 }]);
    const tasks = await api.t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM task.tasks WHERE resource_id IN (SELECT id FROM inventory.resources WHERE name = 'raced')",
    );
    expect(tasks).toEqual([{ n: 1 }]);
  });
});

describe("tasks", () => {
  it("streams a task as Server-Sent Events until it ends", async () => {
    const created = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "streamed", spec: {} },
    });
    const task = created.json<{ id: string }>();
    const stream = api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/tasks/${task.id}/events`,
    });
    const actor = { actor: "nett" };
    for (const [verb, extra] of [
      ["queued", {}],
      ["started", {}],
      ["progress", { percent: 50, message: "half way" }],
      ["succeeded", {}],
    ] as const) {
      await new Promise((r) => setTimeout(r, 30));
      await inTransaction(api.t.db, (tx) =>
        api.facade.taskService.transition(tx, task.id, verb, { ...actor, ...extra }),
      );
    }
    const response = await stream;
    expect(response.headers["content-type"]).toMatch(/^text\/event-stream/);
    const events = response.body
      .trim()
      .split("\n\n")
      .map((block) => ({
        event: /^event: (.*)$/m.exec(block)?.[1],
        data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") as Record<string, unknown>,
      }));
    expect(events.filter((e) => e.event === "history").map((e) => e.data.verb)).toEqual([
      "created",
      "queued",
      "started",
      "progress",
      "succeeded",
    ]);
    expect(events.at(-1)).toEqual({ event: "end", data: { state: "succeeded" } });
  });

  it("cancels a task once, and says why a second time fails", async () => {
    const created = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "cancelled", spec: {} },
    });
    const { id } = created.json<{ id: string }>();
    const cancel = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/tasks/${id}/cancel`,
      payload: { reason: "changed my mind" },
    });
    expect(cancel.json()).toMatchObject({ state: "cancelled", reason: "changed my mind" });
    const again = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/tasks/${id}/cancel`,
      payload: {},
    });
    expect(expectProblem(again, 409, "invalid-state").detail).toBe(
      `task ${id} cannot go from cancelled to cancelled`,
    );
  });

  it("lists a resource's tasks newest first, page by page", async () => {
    const list = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/tasks`,
      query: { resource: acme.network.id },
    });
    expect(list.json<{ items: { operation: string }[] }>().items.map((t) => t.operation)).toEqual([
      "network.delete",
      "network.update",
      "network.create",
    ]);
    // The cursor continues with older tasks: one at a time, the same three in the same order.
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.call(acme.adminToken, {
        method: "GET",
        url: `/api/v1/tenants/acme/tasks`,
        query: { resource: acme.network.id, limit: "1", ...(cursor ? { cursor } : {}) },
      });
      const body = page.json<{ items: { operation: string }[]; nextCursor?: string }>();
      paged.push(...body.items.map((t) => t.operation));
      cursor = body.nextCursor;
    } while (cursor);
    expect(paged).toEqual(["network.delete", "network.update", "network.create"]);
  });
});

describe("audit", () => {
  it("records every change with its actor and correlation id, in the same transaction", async () => {
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/servers`,
      headers: { "x-correlation-id": "corr-audit-1" },
      payload: { name: "app-1", spec: { machineClass: "m1-large" } },
    });
    expect(response.headers["x-correlation-id"]).toBe("corr-audit-1");
    const serverId = response.json<{ resource: { id: string } }>().resource.id;
    const trail = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/audit`,
      query: { resourceId: serverId },
    });
    expect(trail.json<{ items: unknown[] }>().items).toEqual([
      expect.objectContaining({
        actor: "user:tenant-admin-user",
        action: "server.create",
        resource: { kind: "server", id: serverId },
        correlationId: "corr-audit-1",
        after: expect.objectContaining({ name: "app-1" }) as unknown,
      }),
    ]);
    expectProblem(
      await api.call(acme.adminToken, { method: "GET", url: "/api/v1/audit" }),
      403,
      "forbidden",
    );
    const platform = await api.call(operator, {
      method: "GET",
      url: "/api/v1/audit",
      query: { actor: "operator:operator-user" },
    });
    expect(platform.json<{ items: { action: string }[] }>().items.map((r) => r.action)).toContain(
      "tenant.create",
    );
  });
});

describe("the HTTP surface", () => {
  it("answers 401 with WWW-Authenticate, and never a hint of data", async () => {
    const none = await api.call(undefined, { method: "GET", url: `/api/v1/tenants/acme` });
    expectProblem(none, 401, "unauthorized");
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="dataverket"');
    const bad = await api.call("not.a.jwt", { method: "GET", url: `/api/v1/tenants/acme` });
    expect(bad.headers["www-authenticate"]).toContain('error="invalid_token"');
    expect(bad.body).not.toContain(acme.tenant.id);
  });

  it("answers malformed JSON, oversize bodies and unknown routes with problems", async () => {
    const malformed = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects`,
      headers: { "content-type": "application/json" },
      payload: '{"name": ',
    });
    expectProblem(malformed, 400, "invalid-request");
    const huge = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects`,
      payload: { name: "big", displayName: "x".repeat(2 * 1024 * 1024) },
    });
    expectProblem(huge, 413, "payload-too-large");
    expectProblem(
      await api.call(acme.adminToken, { method: "GET", url: "/api/v1/nothing-here" }),
      404,
      "not-found",
    );
  });

  it("serves the committed OpenAPI document, unauthenticated", async () => {
    const served = await api.call(undefined, { method: "GET", url: "/api/v1/openapi.json" });
    expect(served.statusCode).toBe(200);
    const committed = JSON.parse(
      readFileSync(`${packageRoot()}/docs/api/openapi.json`, "utf8"),
    ) as unknown;
    expect(served.json()).toEqual(committed);
  });

  it("hides internal failures: a 500 says nothing about SQL or stacks", async () => {
    const broken = await startApi();
    const token = await broken.token("operator");
    await broken.t.db.close();
    const response = await broken.call(token, { method: "GET", url: "/api/v1/tenants" });
    expect(expectProblem(response, 500, "internal").detail).toBe(
      "the server failed to answer; the error is logged",
    );
    expect(response.body).not.toMatch(/select|tenancy|pool|at .*\.ts/i);
    await broken.app.close();
    await broken.t.admin.close();
  });
});

describe("rate limits", () => {
  it("gives one tenant 429 with Retry-After without slowing another", async () => {
    const limited = await startApi({ DV_API_RATE_LIMIT: "5", DV_API_RATE_WINDOW_MS: "60000" });
    try {
      const a = await seedTenant(limited, "burst-a").catch(() => undefined);
      void a;
      const tokenA = await limited.token("tenant-reader", "burst-a");
      const tokenB = await limited.token("tenant-reader", "burst-b");
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++)
        statuses.push(
          (await limited.call(tokenA, { method: "GET", url: "/api/v1/tenants/burst-a/projects" }))
            .statusCode,
        );
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      const limitedResponse = await limited.call(tokenA, {
        method: "GET",
        url: "/api/v1/tenants/burst-a/projects",
      });
      expectProblem(limitedResponse, 429, "rate-limited");
      expect(Number(limitedResponse.headers["retry-after"])).toBeGreaterThan(0);
      const other = await limited.call(tokenB, { method: "GET", url: "/api/v1/tenants/burst-b" });
      expect(other.statusCode).not.toBe(429);
    } finally {
      await limited.close();
    }
  });
});
