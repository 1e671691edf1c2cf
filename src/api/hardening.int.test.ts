// Issue 18, at the API on a real PostgreSQL: a token keeps meaning the tenant (and project) it was
// issued for, also after the name is deleted and taken again; text that PostgreSQL refuses, made-up
// cursors and impossible dates are 400s naming the field, never 500s; a project-scoped token reads
// only its project's audit records; rate limits count per resolved tenant and, before any
// signature check, per client address; If-Match takes only our strong ETags; tenants do not see
// the controllers' internals in a resource's status.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApiHarness,
  expectProblem as problem,
  type ProblemResponse,
  type Seeded,
  seedTenant,
  startApi,
} from "../../test/support/api.js";
import { environmentUrl } from "../../test/support/api-sweep.js";
import { newId } from "../kernel/index.js";
import { ApiFacade } from "./facade.js";
import { SCOPE_CACHE_MS } from "./facade/scope.js";

let api: ApiHarness;
let acme: Seeded;
let operator: string;

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator");
  acme = await seedTenant(api, "acme");
});
afterAll(async () => api.close());

const pointers = (p: ProblemResponse) => (p.errors ?? []).map((e) => e.pointer);

/** Creates a tenant as the operator and makes it a minute old (as if made a while ago). */
async function oldTenant(name: string): Promise<string> {
  const created = await api.call(operator, {
    method: "POST",
    url: "/api/v1/tenants",
    payload: { name },
  });
  expect(created.statusCode).toBe(201);
  const id = created.json<{ metadata: { id: string } }>().metadata.id;
  await api.t.admin.query(
    "UPDATE tenancy.tenants SET created_at = created_at - interval '1 minute' WHERE id = $1",
    [id],
  );
  return id;
}

describe("a token keeps meaning the tenant it was issued for", () => {
  it("does not grant a tenant created after it under a deleted tenant's name", async () => {
    await oldTenant("tmpco");
    // Issued half a minute ago, for the tmpco of then (what `dv token create --tenant tmpco`
    // minted before it named tenants by id, and what an identity provider may still mint).
    const old = await api.mint({
      role: "tenant-admin",
      subject: "alice",
      tenant: "tmpco",
      ttlSeconds: 3600,
      now: new Date(Date.now() - 30_000),
    });
    expect(
      (await api.call(old, { method: "GET", url: "/api/v1/tenants/tmpco/projects" })).statusCode,
    ).toBe(200);

    const deleted = await api.call(operator, {
      method: "DELETE",
      url: "/api/v1/tenants/tmpco",
      headers: { "if-match": '"1"' },
    });
    expect(deleted.statusCode).toBe(204);
    const again = await api.call(operator, {
      method: "POST",
      url: "/api/v1/tenants",
      payload: { name: "tmpco" },
    });
    expect(again.statusCode).toBe(201);
    const newcomer = again.json<{ metadata: { id: string } }>().metadata.id;
    const mine = await api.token("tenant-admin", "tmpco", undefined, "bob");
    expect(
      (
        await api.call(mine, {
          method: "POST",
          url: "/api/v1/tenants/tmpco/projects",
          payload: { name: "bobs" },
        })
      ).statusCode,
    ).toBe(201);

    // The old token (remembered as verified) finds nothing of the newcomer's, by name or id,
    // exactly as if it did not exist, and can create nothing in it.
    for (const url of [
      "/api/v1/tenants/tmpco",
      "/api/v1/tenants/tmpco/projects",
      `/api/v1/tenants/${newcomer}/projects`,
      "/api/v1/tenants/tmpco/audit",
      "/api/v1/tenants/tmpco/tasks",
    ]) {
      const response = await api.call(old, { method: "GET", url });
      expect(problem(response, 404).type).toBe("https://dataverket.io/problems/not-found");
      expect(response.body).not.toContain("bobs");
    }
    problem(
      await api.call(old, {
        method: "POST",
        url: "/api/v1/tenants/tmpco/projects",
        payload: { name: "sneaky" },
      }),
      404,
    );
    const projects = await api.call(mine, { method: "GET", url: "/api/v1/tenants/tmpco/projects" });
    expect(
      projects
        .json<{ items: { metadata: { name: string } }[] }>()
        .items.map((p) => p.metadata.name),
    ).toEqual(["bobs"]);
    // A token naming the newcomer by id, whenever it was issued, is the newcomer's.
    const byId = await api.mint({
      role: "tenant-reader",
      subject: "carol",
      tenant: newcomer,
      ttlSeconds: 3600,
      now: new Date(Date.now() - 30_000),
    });
    expect((await api.call(byId, { method: "GET", url: "/api/v1/tenants/tmpco" })).statusCode).toBe(
      200,
    );
  });

  it("never replays a deleted tenant's Idempotency-Key responses to its newcomer", async () => {
    await oldTenant("idemco");
    const before = await api.mint({
      role: "tenant-admin",
      subject: "alice",
      tenant: "idemco",
      ttlSeconds: 3600,
      now: new Date(Date.now() - 30_000),
    });
    const request = {
      method: "POST" as const,
      url: "/api/v1/tenants/idemco/projects",
      headers: { "idempotency-key": "create-web" },
      payload: { name: "web" },
    };
    const first = await api.call(before, request);
    expect(first.statusCode).toBe(201);
    const oldId = first.json<{ metadata: { id: string } }>().metadata.id;
    for (const url of ["/api/v1/tenants/idemco/projects/web", "/api/v1/tenants/idemco"]) {
      const gone = await api.call(operator, {
        method: "DELETE",
        url,
        headers: { "if-match": '"1"' },
      });
      expect(gone.statusCode, url).toBe(204);
    }
    expect(
      (
        await api.call(operator, {
          method: "POST",
          url: "/api/v1/tenants",
          payload: { name: "idemco" },
        })
      ).statusCode,
    ).toBe(201);
    // Another alice, in the new idemco, happens to send the same key and body.
    const after = await api.token("tenant-admin", "idemco", undefined, "alice");
    const second = await api.call(after, request);
    expect(second.statusCode).toBe(201);
    expect(second.headers["idempotent-replayed"]).toBeUndefined();
    const newId = second.json<{ metadata: { id: string } }>().metadata.id;
    expect(newId).not.toBe(oldId);
    const got = await api.call(after, {
      method: "GET",
      url: "/api/v1/tenants/idemco/projects/web",
    });
    expect(got.json()).toMatchObject({ metadata: { id: newId } });
  });

  it("does not grant a project created after it under a deleted project's name", async () => {
    await oldTenant("pscope");
    const admin = await api.token("tenant-admin", "pscope");
    const web = await api.call(admin, {
      method: "POST",
      url: "/api/v1/tenants/pscope/projects",
      payload: { name: "web" },
    });
    const webId = web.json<{ metadata: { id: string } }>().metadata.id;
    await api.t.admin.query(
      "UPDATE tenancy.projects SET created_at = created_at - interval '1 minute' WHERE id = $1",
      [webId],
    );
    const scoped = await api.mint({
      role: "tenant-admin",
      subject: "dave",
      tenant: "pscope",
      project: "web",
      ttlSeconds: 3600,
      now: new Date(Date.now() - 30_000),
    });
    expect(
      (await api.call(scoped, { method: "GET", url: "/api/v1/tenants/pscope/projects/web" }))
        .statusCode,
    ).toBe(200);

    const deleted = await api.call(admin, {
      method: "DELETE",
      url: "/api/v1/tenants/pscope/projects/web",
      headers: { "if-match": '"1"' },
    });
    expect(deleted.statusCode).toBe(204);
    const again = await api.call(admin, {
      method: "POST",
      url: "/api/v1/tenants/pscope/projects",
      payload: { name: "web", displayName: "the new web" },
    });
    expect(again.statusCode).toBe(201);

    problem(
      await api.call(scoped, { method: "GET", url: "/api/v1/tenants/pscope/projects/web" }),
      404,
    );
    problem(
      await api.call(scoped, {
        method: "POST",
        url: "/api/v1/tenants/pscope/projects/web/environments",
        payload: { name: "prod", datacenter: "dc1" },
      }),
      404,
    );
    const listed = await api.call(scoped, {
      method: "GET",
      url: "/api/v1/tenants/pscope/projects",
    });
    expect(listed.json<{ items: unknown[] }>().items).toEqual([]);
    expect(listed.body).not.toContain("the new web");
  });
});

describe("a tenant or project another API process deleted", () => {
  it("is refused here once the deletion is announced, though this process had resolved it", async () => {
    const tenant = await api.call(operator, {
      method: "POST",
      url: "/api/v1/tenants",
      payload: { name: "elsewhere" },
    });
    const tenantId = tenant.json<{ metadata: { id: string } }>().metadata.id;
    const admin = await api.token("tenant-admin", tenantId);
    const project = await api.call(admin, {
      method: "POST",
      url: `/api/v1/tenants/${tenantId}/projects`,
      payload: { name: "short-lived" },
    });
    const projectId = project.json<{ metadata: { id: string } }>().metadata.id;
    const environments = `/api/v1/tenants/${tenantId}/projects/${projectId}/environments`;
    const tasks = `/api/v1/tenants/${tenantId}/tasks`;
    // Resolved (and remembered) by this process.
    expect((await api.call(admin, { method: "GET", url: environments })).statusCode).toBe(200);
    expect((await api.call(admin, { method: "GET", url: tasks })).statusCode).toBe(200);

    // Another replica of the API, on the same database, deletes the project, then the tenant.
    const replica = new ApiFacade({ db: api.t.db, newId, now: () => new Date() });
    const asOperator = {
      principal: { subject: "other-replica", role: "operator" as const },
      correlationId: "other-replica",
    };
    // Refused long before this process could have forgotten the ids by age (SCOPE_CACHE_MS):
    // the announcement did it. Half the cache's age leaves any machine time enough.
    await replica.deleteProject(asOperator, tenantId, projectId, 1);
    await refusedWithin(SCOPE_CACHE_MS / 2, admin, environments);
    expect((await api.call(admin, { method: "GET", url: tasks })).statusCode).toBe(200);
    await replica.deleteTenant(asOperator, tenantId, 1);
    await refusedWithin(SCOPE_CACHE_MS / 2, admin, tasks);
  });

  it("refuses an environment another process deleted once the deletion is announced", async () => {
    const tenant = await api.call(operator, {
      method: "POST",
      url: "/api/v1/tenants",
      payload: { name: "env-elsewhere" },
    });
    const tenantId = tenant.json<{ metadata: { id: string } }>().metadata.id;
    const admin = await api.token("tenant-admin", tenantId);
    const project = await api.call(admin, {
      method: "POST",
      url: `/api/v1/tenants/${tenantId}/projects`,
      payload: { name: "p" },
    });
    const projectId = project.json<{ metadata: { id: string } }>().metadata.id;
    const environment = await api.call(admin, {
      method: "POST",
      url: `/api/v1/tenants/${tenantId}/projects/${projectId}/environments`,
      payload: { name: "gone-soon", datacenter: "dc1" },
    });
    const environmentId = environment.json<{ metadata: { id: string } }>().metadata.id;
    const networks = `/api/v1/tenants/${tenantId}/projects/${projectId}/environments/${environmentId}/networks`;
    // This process remembers where the environment is (its resource paths ask nothing more).
    expect((await api.call(admin, { method: "GET", url: networks })).statusCode).toBe(200);

    const replica = new ApiFacade({ db: api.t.db, newId, now: () => new Date() });
    await replica.deleteEnvironment(
      { principal: { subject: "other-replica", role: "operator" }, correlationId: "other" },
      tenantId,
      projectId,
      environmentId,
      1,
    );
    await refusedWithin(SCOPE_CACHE_MS / 2, admin, networks);
    const created = await api.call(admin, {
      method: "POST",
      url: networks,
      payload: { name: "orphan", spec: { prefixLength: 28 } },
    });
    expect(problem(created, 404).detail).toMatch(/environment/);
  });
});

/** Polls `url` as `token` until it answers 404, failing after `ms`. */
async function refusedWithin(ms: number, token: string, url: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const response = await api.call(token, { method: "GET", url });
    if (response.statusCode === 404) return;
    expect(response.statusCode).toBe(200);
    if (Date.now() > deadline) throw new Error(`${url} still answers 200 after ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("input PostgreSQL cannot store is refused at the boundary", () => {
  const NUL = "a\u0000b";

  it("refuses NUL and other control characters in free text with 400 naming the field", async () => {
    const tenantPatch = await api.call(operator, {
      method: "PATCH",
      url: "/api/v1/tenants/acme",
      headers: { "if-match": '"1"' },
      payload: { displayName: NUL },
    });
    expect(pointers(problem(tenantPatch, 400))).toEqual(["/body/displayName"]);
    const cases: {
      token: string;
      method: "POST" | "PATCH";
      url: string;
      body: Record<string, unknown>;
    }[] = [
      {
        token: operator,
        method: "POST",
        url: "/api/v1/tenants",
        body: { name: "n", displayName: NUL },
      },
      {
        token: acme.adminToken,
        method: "POST",
        url: "/api/v1/tenants/acme/projects",
        body: { name: "nul", displayName: NUL },
      },
      {
        token: acme.adminToken,
        method: "PATCH",
        url: `/api/v1/tenants/acme/projects/${acme.project.id}`,
        body: { displayName: "tab\there" },
      },
      {
        token: acme.adminToken,
        method: "POST",
        url: "/api/v1/tenants/acme/projects",
        body: { name: "surrogate", displayName: "\ud800" },
      },
    ];
    for (const c of cases) {
      const response = await api.call(c.token, {
        method: c.method,
        url: c.url,
        headers: { "if-match": '"1"' },
        payload: c.body,
      });
      expect(pointers(problem(response, 400)), `${c.method} ${c.url}`).toEqual([
        "/body/displayName",
      ]);
    }
    const label = await api.call(acme.adminToken, {
      method: "POST",
      url: "/api/v1/tenants/acme/projects",
      payload: { name: "labelled", labels: { team: NUL } },
    });
    expect(pointers(problem(label, 400))).toEqual(["/body/labels/team"]);
    const server = await api.call(acme.adminToken, {
      method: "POST",
      url: `${environmentUrl(acme)}/servers`,
      payload: { name: "web-1", spec: { machineClass: "m1-large", image: NUL } },
    });
    expect(pointers(problem(server, 400))).toEqual(["/body/spec/image"]);
    const cancel = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/tasks/${acme.task.id}/cancel`,
      payload: { reason: NUL },
    });
    expect(pointers(problem(cancel, 400))).toEqual(["/body/reason"]);
    for (const action of ["replay", "discard"]) {
      const response = await api.call(operator, {
        method: "POST",
        url: `/api/v1/dead-letters/01a207c8-d2cc-734f-a462-00f8ba530062/${action}`,
        payload: { reason: NUL },
      });
      expect(pointers(problem(response, 400))).toEqual(["/body/reason"]);
    }
    const actor = await api.call(acme.adminToken, {
      method: "GET",
      url: "/api/v1/tenants/acme/audit",
      query: { actor: NUL },
    });
    expect(pointers(problem(actor, 400))).toEqual(["/querystring/actor"]);
    // A reason may span lines.
    const multiLine = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/tasks/${acme.task.id}/cancel`,
      payload: { reason: "not needed\nafter all" },
    });
    expect(multiLine.statusCode).toBe(200);
  });

  it("answers a token whose subject holds NUL with 401 naming the claim", async () => {
    const token = await api.mint({
      role: "tenant-admin",
      subject: NUL,
      tenant: "acme",
      ttlSeconds: 600,
    });
    const response = await api.call(token, {
      method: "POST",
      url: "/api/v1/tenants/acme/projects",
      payload: { name: "by-nul" },
    });
    expect(problem(response, 401).detail).toBe('the token\'s "sub" claim is missing or not valid');
  });

  it("refuses a cursor it did not give out on every list, naming /querystring/cursor", async () => {
    const lists = [
      "/api/v1/tenants",
      "/api/v1/tenants/acme/projects",
      `/api/v1/tenants/acme/projects/${acme.project.id}/environments`,
      ...["networks", "servers", "clusters", "buckets"].map((k) => `${environmentUrl(acme)}/${k}`),
      "/api/v1/tenants/acme/tasks",
      "/api/v1/tenants/acme/audit",
      "/api/v1/audit",
      "/api/v1/dead-letters",
      // Backups are listed newest first, `limit` only: a cursor is no parameter of it.
      "/api/v1/database/backups",
    ];
    // {"a":"zzzz"}: decoded, it was a position of the list's own shape no longer (a 500 before).
    for (const cursor of ["eyJhIjoienp6eiJ9", "AAAA.AAAA", "bogus"]) {
      for (const url of lists) {
        const response = await api.call(operator, { method: "GET", url, query: { cursor } });
        expect(pointers(problem(response, 400)), `${url} ${cursor}`).toEqual([
          "/querystring/cursor",
        ]);
      }
    }
    // A cursor it gave out works; changed by one character, or used on another list, it is a 400.
    const first = await api.call(operator, {
      method: "GET",
      url: "/api/v1/tenants/acme/audit",
      query: { limit: "1" },
    });
    const cursor = first.json<{ nextCursor?: string }>().nextCursor ?? "";
    expect(cursor).not.toBe("");
    const next = await api.call(operator, {
      method: "GET",
      url: "/api/v1/tenants/acme/audit",
      query: { limit: "1", cursor },
    });
    expect(next.statusCode).toBe(200);
    const flipped = `${cursor.slice(0, 2)}${cursor[2] === "A" ? "B" : "A"}${cursor.slice(3)}`;
    for (const [url, c] of [
      ["/api/v1/tenants/acme/audit", flipped],
      ["/api/v1/tenants/acme/projects", cursor],
      ["/api/v1/tenants/acme/tasks", cursor],
    ] as const) {
      const response = await api.call(operator, { method: "GET", url, query: { cursor: c } });
      expect(pointers(problem(response, 400)), url).toEqual(["/querystring/cursor"]);
    }
  });

  it("refuses audit times PostgreSQL cannot hold, naming the field", async () => {
    for (const [name, value] of [
      ["from", "0000-01-01T00:00:00Z"],
      ["to", "0000-01-01T00:00:00Z"],
      ["from", "1969-12-31T23:59:59Z"],
    ] as const) {
      const response = await api.call(acme.adminToken, {
        method: "GET",
        url: "/api/v1/tenants/acme/audit",
        query: { [name]: value },
      });
      expect(pointers(problem(response, 400))).toEqual([`/querystring/${name}`]);
    }
    const fine = await api.call(acme.adminToken, {
      method: "GET",
      url: "/api/v1/tenants/acme/audit",
      query: { from: "1970-01-01T00:00:00Z", to: "9999-12-31T23:59:59Z" },
    });
    expect(fine.statusCode).toBe(200);
  });
});

describe("a project-scoped token reads the audit trail of its project only", () => {
  it("sees its project's records, not other projects' nor the tenant's own", async () => {
    const shop = await api.call(acme.adminToken, {
      method: "POST",
      url: "/api/v1/tenants/acme/projects",
      payload: { name: "secret-shop", labels: { codename: "bluebird" } },
    });
    const shopId = shop.json<{ metadata: { id: string } }>().metadata.id;
    const env = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects/${shopId}/environments`,
      payload: { name: "shop-prod", datacenter: "dc1" },
    });
    const envId = env.json<{ metadata: { id: string } }>().metadata.id;
    const net = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/projects/${shopId}/environments/${envId}/networks`,
      payload: { name: "shop-net", spec: { prefixLength: 27 } },
    });
    expect(net.statusCode).toBe(202);
    const secrets = [shopId, "secret-shop", "bluebird", envId, "shop-prod", "shop-net"];

    const wide = await api.call(acme.adminToken, {
      method: "GET",
      url: "/api/v1/tenants/acme/audit",
      query: { limit: "500" },
    });
    expect(wide.body).toContain("shop-net");

    for (const role of ["tenant-admin", "tenant-reader"] as const) {
      const scoped = await api.token(role, "acme", acme.project.name);
      const response = await api.call(scoped, {
        method: "GET",
        url: "/api/v1/tenants/acme/audit",
        query: { limit: "500" },
      });
      expect(response.statusCode, role).toBe(200);
      const items = response.json<{ items: { action: string; projectId: string | null }[] }>()
        .items;
      expect(items.map((r) => r.action)).toEqual(
        expect.arrayContaining(["project.create", "environment.create", "network.create"]),
      );
      expect(items.every((r) => r.projectId === acme.project.id)).toBe(true);
      expect(secrets.filter((s) => response.body.includes(s))).toEqual([]);
      // Records of the tenant itself belong to no project.
      expect(items.some((r) => r.action.startsWith("tenant."))).toBe(false);
    }
  });
});

describe("If-Match", () => {
  it("takes only the strong ETags the API gives out", async () => {
    const url = `/api/v1/tenants/acme/projects/${acme.project.id}`;
    const current = await api.call(acme.adminToken, { method: "GET", url });
    const version = Number(String(current.headers.etag).replaceAll('"', ""));
    for (const ifMatch of [`W/"${version}"`, `"0${version}"`, "*", `"${version}", "${version}"`]) {
      const response = await api.call(acme.adminToken, {
        method: "PATCH",
        url,
        headers: { "if-match": ifMatch },
        payload: { labels: { weak: "etag" } },
      });
      expect(pointers(problem(response, 400)), ifMatch).toEqual(["/headers/if-match"]);
    }
    const strong = await api.call(acme.adminToken, {
      method: "PATCH",
      url,
      headers: { "if-match": `"${version}"` },
      payload: { labels: { strong: "etag" } },
    });
    expect(strong.statusCode).toBe(200);
  });
});

describe("tokens with untrustworthy times", () => {
  it("answers a token issued in the future, or valid for over a day, with 401 saying why", async () => {
    const future = await api.mint({
      role: "tenant-admin",
      subject: "alice",
      tenant: "acme",
      ttlSeconds: 600,
      now: new Date(Date.now() + 3_600_000),
    });
    const early = await api.call(future, { method: "GET", url: "/api/v1/tenants/acme" });
    expect(problem(early, 401).detail).toMatch(/^the token was issued in the future/);
    expect(early.headers["www-authenticate"]).toMatch(/error="invalid_token"/);
    const forever = await api.mint({
      role: "tenant-admin",
      subject: "alice",
      tenant: "acme",
      ttlSeconds: 30 * 86_400,
    });
    const long = await api.call(forever, { method: "GET", url: "/api/v1/tenants/acme" });
    expect(problem(long, 401).detail).toMatch(/^the token is valid for 720 h .* the 24 h this API/);
  });
});

describe("a resource's status", () => {
  it("shows tenants each step's state, not command ids, services or attempts; operators all", async () => {
    const command = "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f";
    await api.t.admin.query("UPDATE inventory.resources SET status = $1 WHERE id = $2", [
      JSON.stringify({
        observedGeneration: 1,
        conditions: [],
        observations: 3,
        cidr: "10.0.0.0/26",
        steps: {
          main: {
            command,
            service: "nett",
            action: "apply",
            generation: 1,
            attempt: 2,
            dispatchedAt: "2026-12-01T12:00:00.000Z",
            state: "failed",
            error: "the switch refused the VLAN",
          },
          "observe:3": {
            command: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e80",
            service: "nett",
            action: "observe",
            generation: 1,
            attempt: 1,
            dispatchedAt: "2026-12-01T12:01:00.000Z",
            state: "done",
          },
        },
      }),
      acme.network.id,
    ]);
    const url = `${environmentUrl(acme)}/networks/${acme.network.id}`;
    const reader = await api.token("tenant-reader", "acme");
    for (const token of [acme.adminToken, reader]) {
      const seen = await api.call(token, { method: "GET", url });
      expect(seen.json<{ status: unknown }>().status).toEqual({
        observedGeneration: 0,
        conditions: [],
        cidr: "10.0.0.0/26",
        steps: {
          main: {
            state: "failed",
            generation: 1,
            startedAt: "2026-12-01T12:00:00.000Z",
            message: "the switch refused the VLAN",
          },
        },
      });
      expect(seen.body).not.toContain(command);
      const listed = await api.call(token, {
        method: "GET",
        url: `${environmentUrl(acme)}/networks`,
      });
      expect(listed.body).not.toContain(command);
      expect(listed.body).not.toContain('"attempt"');
    }
    const asOperator = await api.call(operator, { method: "GET", url });
    expect(asOperator.json()).toMatchObject({
      status: {
        observations: 3,
        steps: {
          main: { command, service: "nett", attempt: 2, state: "failed" },
          "observe:3": { action: "observe" },
        },
      },
    });
  });
});

describe("rate limits", () => {
  let limited: ApiHarness;
  let alpha: { id: string };

  beforeAll(async () => {
    // Five requests a minute per budget: nothing here takes a minute, so no window ends midway.
    limited = await startApi({ DV_API_RATE_LIMIT: "5", DV_API_RATE_WINDOW_MS: "60000" });
    // Made through the facade, so the setup spends no budget.
    const ctx = {
      principal: { subject: "setup", role: "operator" as const },
      correlationId: "setup",
    };
    alpha = await limited.facade.createTenant(ctx, { name: "alpha" });
    await limited.facade.createTenant(ctx, { name: "bravo" });
  });
  afterAll(async () => limited?.close());

  it("gives a tenant one budget whether its tokens name it by name or by id, 404s included; another tenant is unaffected", async () => {
    const byName = await limited.token("tenant-reader", "alpha", undefined, "ann");
    const byId = await limited.token("tenant-reader", alpha.id, undefined, "ann");
    const statuses: number[] = [];
    for (const [token, url] of [
      [byName, "/api/v1/tenants/alpha/projects"],
      [byName, "/api/v1/tenants/alpha/projects/no-such-project"],
      [byName, "/api/v1/tenants/alpha"],
      [byId, "/api/v1/tenants/alpha/projects"],
      [byId, "/api/v1/tenants/alpha"],
    ] as const) {
      statuses.push((await limited.call(token, { method: "GET", url })).statusCode);
    }
    expect(statuses).toEqual([200, 404, 200, 200, 200]);
    for (const token of [byId, byName]) {
      const refused = await limited.call(token, { method: "GET", url: "/api/v1/tenants/alpha" });
      expect(problem(refused, 429).type).toBe("https://dataverket.io/problems/rate-limited");
      expect(Number(refused.headers["retry-after"])).toBeGreaterThan(0);
    }
    const bravo = await limited.token("tenant-reader", "bravo");
    expect(
      (await limited.call(bravo, { method: "GET", url: "/api/v1/tenants/bravo" })).statusCode,
    ).toBe(200);
  });

  it("throttles a flood of forged or missing tokens by client address, before checking any signature", async () => {
    // A token the API has verified before keeps working: it is not the address's budget.
    const bravo = await limited.token("tenant-reader", "bravo", undefined, "ben");
    expect(
      (await limited.call(bravo, { method: "GET", url: "/api/v1/tenants/bravo" })).statusCode,
    ).toBe(200);
    const genuine = bravo.split(".");
    const forged = `${genuine[0]}.${genuine[1]}.${"A".repeat(86)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const headers = i % 3 === 0 ? {} : { authorization: `Bearer ${forged}` };
      statuses.push(
        (await limited.app.inject({ method: "GET", url: "/api/v1/tenants/bravo", headers }))
          .statusCode,
      );
    }
    // The address had spent its five on the first use of each token above (and this file's other
    // tokens): the flood is refused with 429 from the start or after a few 401s.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(7);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
    expect(statuses.indexOf(401) === -1 || statuses.lastIndexOf(401) < statuses.indexOf(429)).toBe(
      true,
    );
    // Refused before its signature is checked: a fresh genuine token from that address waits too …
    const fresh = await limited.token("tenant-reader", "bravo", undefined, "newcomer");
    problem(await limited.call(fresh, { method: "GET", url: "/api/v1/tenants/bravo" }), 429);
    // … while the tenant's verified token is not held back by the flood.
    expect(
      (await limited.call(bravo, { method: "GET", url: "/api/v1/tenants/bravo" })).statusCode,
    ).toBe(200);
  });
});
