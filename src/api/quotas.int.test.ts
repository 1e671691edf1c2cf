// Tenant quotas and the admission of references, through the public API on the real PostgreSQL:
// defaults from the PlatformPolicy, operators' overrides, usage a tenant can read, refusals that
// name the quota, and requests naming platform objects that do not exist or cannot be used.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlatformSync } from "../../controllers/index.js";
import {
  type ApiHarness,
  expectProblem,
  type Seeded,
  seedTenant,
  startApi,
} from "../../test/support/api.js";
import { createServices, type Services } from "../app/index.js";
import { inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";

let api: ApiHarness;
let services: Services;
let acme: Seeded;
let globex: Seeded;
let operator: string;

const envPath = (s: Seeded) =>
  `/api/v1/tenants/${s.tenant.id}/projects/${s.project.id}/environments/${s.environment.id}`;

interface Quotas {
  limits: { quota: string; scope: string; limit: number | null; source: string }[];
  usage: { quota: string; scope: string; used: number; limit: number | null }[];
}

async function quotas(token: string, tenant: string): Promise<Quotas> {
  const response = await api.call(token, {
    method: "GET",
    url: `/api/v1/tenants/${tenant}/quotas`,
  });
  expect(response.statusCode).toBe(200);
  return response.json<Quotas>();
}

const used = (q: Quotas, quota: string, scope: string) =>
  q.usage.find((u) => u.quota === quota && u.scope === scope)?.used ?? 0;

beforeAll(async () => {
  // Admission reads the platform for every request, so a test that changes it sees it at once.
  api = await startApi({ DV_API_ADMISSION_CACHE_MS: "0" });
  services = createServices(api.t.db, newId);
  operator = await api.token("operator");
  // The platform's policy, as Git would apply it: a small address quota to run into.
  const applied = await new PlatformSync(services).apply({
    kind: "PlatformPolicy",
    name: "default",
    generation: 1,
    spec: { quotas: { addresses: 1024, environments: 3 } },
  });
  expect(applied.ok).toBe(true);
  acme = await seedTenant(api, "acme"); // one environment, one /26 network
  globex = await seedTenant(api, "globex");
});
afterAll(async () => api.close());

describe("quotas", () => {
  it("lets a tenant read its limits, from the policy, and what it holds", async () => {
    const q = await quotas(acme.adminToken, "acme");
    expect(q.limits).toEqual(
      expect.arrayContaining([
        { quota: "addresses", scope: "*", limit: 1024, source: "policy" },
        { quota: "environments", scope: "*", limit: 3, source: "policy" },
        // Defaults of the PlatformPolicy schema for what the policy does not name.
        { quota: "vlans", scope: "*", limit: 64, source: "policy" },
      ]),
    );
    expect(used(q, "addresses", "dc1")).toBe(64);
    expect(used(q, "vlans", "dc1")).toBe(1);
    expect(used(q, "environments", "*")).toBe(1);
    expect(used(q, "networksPerEnvironment", acme.environment.id)).toBe(1);
    // Another tenant's quotas are not there for it.
    const other = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/globex/quotas`,
    });
    expect(other.statusCode).toBe(404);
  });

  it("refuses a request past a quota with the quota, its limit, what is used and asked, and records nothing", async () => {
    // 64 held; a /23 (512) and a /24 (256) fit in 1024, another /24 does not.
    for (const [name, prefixLength] of [
      ["big", 23],
      ["mid", 24],
    ] as const) {
      const ok = await api.call(acme.adminToken, {
        method: "POST",
        url: `${envPath(acme)}/networks`,
        payload: { name, spec: { prefixLength } },
      });
      expect(ok.statusCode).toBe(202);
    }
    const refused = await api.call(acme.adminToken, {
      method: "POST",
      url: `${envPath(acme)}/networks`,
      payload: { name: "one-too-many", spec: { prefixLength: 24 } },
    });
    expect(refused.statusCode).toBe(409);
    expect(refused.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(refused.json()).toMatchObject({
      type: "https://dataverket.io/problems/quota-exceeded",
      quota: { name: "addresses", scope: "dc1", limit: 1024, used: 832, requested: 256 },
    });
    const list = await api.call(acme.adminToken, {
      method: "GET",
      url: `${envPath(acme)}/networks`,
    });
    expect(
      list.json<{ items: { metadata: { name: string } }[] }>().items.map((n) => n.metadata.name),
    ).not.toContain("one-too-many");
    expect(used(await quotas(acme.adminToken, "acme"), "addresses", "dc1")).toBe(832);
    // The other tenant's room is its own.
    const theirs = await api.call(globex.adminToken, {
      method: "POST",
      url: `${envPath(globex)}/networks`,
      payload: { name: "room", spec: { prefixLength: 23 } },
    });
    expect(theirs.statusCode).toBe(202);
  });

  it("charges a changed spec the difference", async () => {
    const path = `${envPath(acme)}/networks/mid`;
    const current = await api.call(acme.adminToken, { method: "GET", url: path });
    const grown = await api.call(acme.adminToken, {
      method: "PATCH",
      url: path,
      headers: { "if-match": current.headers.etag as string },
      payload: { spec: { prefixLength: 22 } },
    });
    expect(grown.statusCode).toBe(409);
    expect(grown.json()).toMatchObject({ quota: { name: "addresses", requested: 768 } });
    const shrunk = await api.call(acme.adminToken, {
      method: "PATCH",
      url: path,
      headers: { "if-match": current.headers.etag as string },
      payload: { spec: { prefixLength: 28 } },
    });
    expect(shrunk.statusCode).toBe(202);
    expect(used(await quotas(acme.adminToken, "acme"), "addresses", "dc1")).toBe(64 + 512 + 16);
  });

  it("lets an operator raise a tenant's limit, audited, and never a tenant", async () => {
    const body = { limits: { "*": 4096, dc1: 2048 } };
    const denied = await api.call(acme.adminToken, {
      method: "PUT",
      url: `/api/v1/tenants/acme/quotas/addresses`,
      payload: body,
    });
    expect(denied.statusCode).toBe(403);
    const set = await api.call(operator, {
      method: "PUT",
      url: `/api/v1/tenants/acme/quotas/addresses`,
      payload: body,
    });
    expect(set.statusCode).toBe(200);
    const q = set.json<Quotas>();
    expect(q.limits).toEqual(
      expect.arrayContaining([
        { quota: "addresses", scope: "*", limit: 4096, source: "tenant" },
        { quota: "addresses", scope: "dc1", limit: 2048, source: "tenant" },
      ]),
    );
    expect(q.usage.find((u) => u.quota === "addresses")?.limit).toBe(2048);
    // Globex keeps the policy's limit.
    expect(
      (await quotas(globex.adminToken, "globex")).limits.find((l) => l.quota === "addresses"),
    ).toEqual({ quota: "addresses", scope: "*", limit: 1024, source: "policy" });
    const audit = await api.call(operator, {
      method: "GET",
      url: `/api/v1/tenants/acme/audit?resourceKind=quota`,
    });
    expect(audit.statusCode).toBe(200);
    expect(audit.json<{ items: unknown[] }>().items).toEqual([
      expect.objectContaining({ action: "quota.update", after: body }),
    ]);
    const bad = await api.call(operator, {
      method: "PUT",
      url: `/api/v1/tenants/acme/quotas/addresses`,
      payload: { limits: { "*": -1 } },
    });
    expect(bad.statusCode).toBe(400);
    const unknown = await api.call(operator, {
      method: "PUT",
      url: `/api/v1/tenants/acme/quotas/gpus`,
      payload: { limits: { "*": 1 } },
    });
    expect(unknown.statusCode).toBe(400);
  });

  it("counts environments, and gives them back when deleted", async () => {
    const create = (name: string) =>
      api.call(acme.adminToken, {
        method: "POST",
        url: `/api/v1/tenants/acme/projects/acme-web/environments`,
        payload: { name, datacenter: "dc1" },
      });
    expect((await create("e2")).statusCode).toBe(201);
    expect((await create("e3")).statusCode).toBe(201);
    const refused = await create("e4");
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({
      quota: { name: "environments", scope: "*", limit: 3, used: 3, requested: 1 },
    });
    const e3 = await api.call(acme.adminToken, {
      method: "GET",
      url: `/api/v1/tenants/acme/projects/acme-web/environments/e3`,
    });
    const deleted = await api.call(acme.adminToken, {
      method: "DELETE",
      url: `/api/v1/tenants/acme/projects/acme-web/environments/e3`,
      headers: { "if-match": e3.headers.etag as string },
    });
    expect(deleted.statusCode).toBe(204);
    expect((await create("e4")).statusCode).toBe(201);
  });

  it("gives back what a resource held once it is removed", async () => {
    const before = used(await quotas(globex.adminToken, "globex"), "addresses", "dc1");
    const room = await services.inventory.getResourceByName(
      {
        tenantId: globex.tenant.id,
        projectId: globex.project.id,
        environmentId: globex.environment.id,
        kind: "network",
      },
      "room",
    );
    await inTransaction(api.t.db, async (tx) => {
      await services.inventory.requestResourceDeletion(tx, globex.tenant.id, room.id, room.version);
      await services.inventory.removeResource(tx, room.id);
    });
    const after = await quotas(globex.adminToken, "globex");
    expect(used(after, "addresses", "dc1")).toBe(before - 512);
    expect(used(after, "networksPerEnvironment", globex.environment.id)).toBe(1);
  });
});

describe("admission of references", () => {
  const problemOf = (response: {
    statusCode: number;
    headers: Record<string, unknown>;
    body: string;
  }) => expectProblem(response, 422, "invalid-reference");

  it("refuses a network pool that does not exist, naming the field and what exists", async () => {
    const body = problemOf(
      await api.call(acme.adminToken, {
        method: "POST",
        url: `${envPath(acme)}/networks`,
        payload: { name: "nope", spec: { networkPool: "nope" } },
      }),
    );
    expect(body.detail).toBe(
      'there is no network pool "nope" in datacenter "dc1"; it has: "dc1-tenant"',
    );
    expect(body.errors).toEqual([{ pointer: "/body/spec/networkPool", message: body.detail }]);
  });

  it("refuses a machine class the platform does not offer", async () => {
    const body = problemOf(
      await api.call(acme.adminToken, {
        method: "POST",
        url: `${envPath(acme)}/servers`,
        payload: { name: "web-1", spec: { machineClass: "web" } },
      }),
    );
    expect(body.detail).toBe('there is no machine class "web"; the platform offers: "m1-large"');
    expect(body.errors?.[0]?.pointer).toBe("/body/spec/machineClass");
    const cluster = problemOf(
      await api.call(acme.adminToken, {
        method: "POST",
        url: `${envPath(acme)}/clusters`,
        payload: { name: "k", spec: { machineClass: "web" } },
      }),
    );
    expect(cluster.errors?.[0]?.pointer).toBe("/body/spec/machineClass");
  });

  it("refuses a pool that exists but is Stalled, with the controller's reason", async () => {
    await inTransaction(api.t.db, (tx) =>
      services.platform.setStatus(
        tx,
        "NetworkPool",
        "dc1-tenant",
        {
          conditions: [
            {
              type: "Stalled",
              status: "True",
              reason: "Overlap",
              message: "prefix 10.64.0.0/12 overlaps pool other",
            },
          ],
        },
        1,
      ),
    );
    try {
      const body = problemOf(
        await api.call(acme.adminToken, {
          method: "POST",
          url: `${envPath(acme)}/networks`,
          payload: { name: "stalled", spec: { networkPool: "dc1-tenant" } },
        }),
      );
      expect(body.detail).toBe(
        'NetworkPool "dc1-tenant" is Stalled (Overlap): prefix 10.64.0.0/12 overlaps pool other',
      );
    } finally {
      await inTransaction(api.t.db, (tx) =>
        services.platform.setStatus(tx, "NetworkPool", "dc1-tenant", {}, 1),
      );
    }
  });
});
