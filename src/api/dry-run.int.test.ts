// `?dryRun=All` on the writes of networks, servers, clusters and buckets (what `dv apply
// --dry-run=server` sends): every check a write meets, and nothing kept — no resource, no task,
// no audit record, no quota charge.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApiHarness,
  expectProblem,
  type Seeded,
  seedTenant,
  startApi,
} from "../../test/support/api.js";

let api: ApiHarness;
let acme: Seeded;
let networks: string;

beforeAll(async () => {
  api = await startApi();
  acme = await seedTenant(api, "acme");
  networks = `/api/v1/tenants/acme/projects/acme-web/environments/acme-prod/networks`;
});
afterAll(async () => api.close());

/** What a dry run must leave as it was: the tasks, the audit trail and the quota usage. */
async function footprint() {
  const get = async (url: string) =>
    (await api.call(acme.adminToken, { method: "GET", url, query: { limit: "500" } })).json<{
      items?: unknown[];
      usage?: unknown[];
    }>();
  return {
    tasks: (await get("/api/v1/tenants/acme/tasks")).items?.length,
    audit: (await get("/api/v1/tenants/acme/audit")).items?.length,
    usage: (await get("/api/v1/tenants/acme/quotas")).usage,
    networks: (await get(networks)).items?.length,
  };
}

describe("dryRun=All", () => {
  it("answers a create with the resource it would be, and keeps nothing", async () => {
    const before = await footprint();
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: networks,
      query: { dryRun: "All" },
      headers: { "idempotency-key": "dry-1" },
      payload: { name: "dry", labels: { team: "a" }, spec: { prefixLength: 27 } },
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      kind: "Network",
      metadata: { name: "dry", labels: { team: "a" }, generation: 1 },
      spec: { prefixLength: 27 },
    });
    expect(await footprint()).toEqual(before);
    const missing = await api.call(acme.adminToken, { method: "GET", url: `${networks}/dry` });
    expect(missing.statusCode).toBe(404);
    // The Idempotency-Key was not spent on it: the real create with it is written.
    const real = await api.call(acme.adminToken, {
      method: "POST",
      url: networks,
      headers: { "idempotency-key": "dry-1" },
      payload: { name: "dry", spec: { prefixLength: 27 } },
    });
    expect(real.statusCode).toBe(202);
    expect(real.headers["idempotent-replayed"]).toBeUndefined();
  });

  it("refuses what the write would refuse: a name taken, a reference, a stale version", async () => {
    const taken = await api.call(acme.adminToken, {
      method: "POST",
      url: networks,
      query: { dryRun: "All" },
      payload: { name: "acme-net", spec: {} },
    });
    expectProblem(taken, 409, "already-exists");
    const pool = await api.call(acme.adminToken, {
      method: "POST",
      url: networks,
      query: { dryRun: "All" },
      payload: { name: "elsewhere", spec: { networkPool: "no-such-pool" } },
    });
    expectProblem(pool, 422, "invalid-reference");
    const stale = await api.call(acme.adminToken, {
      method: "PATCH",
      url: `${networks}/acme-net`,
      query: { dryRun: "All" },
      headers: { "if-match": '"99"' },
      payload: { labels: { team: "b" } },
    });
    expectProblem(stale, 412, "precondition-failed");
  });

  it("answers a change with the resource as it would be, and leaves it as it was", async () => {
    const url = `${networks}/acme-net`;
    const read = await api.call(acme.adminToken, { method: "GET", url });
    const before = await footprint();
    const response = await api.call(acme.adminToken, {
      method: "PATCH",
      url,
      query: { dryRun: "All" },
      headers: { "if-match": String(read.headers.etag) },
      payload: { labels: { team: "b" }, spec: { prefixLength: 25 } },
    });
    expect(response.statusCode, response.body).toBe(200);
    expect(response.json()).toMatchObject({
      metadata: { labels: { team: "b" }, generation: 2 },
      spec: { prefixLength: 25 },
    });
    expect(await footprint()).toEqual(before);
    const after = await api.call(acme.adminToken, { method: "GET", url });
    expect(after.headers.etag).toBe(read.headers.etag);
    expect(after.json()).toMatchObject({ metadata: { labels: {} }, spec: { prefixLength: 26 } });
  });

  it("takes only All, naming the parameter", async () => {
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: networks,
      query: { dryRun: "true" },
      payload: { name: "x", spec: {} },
    });
    const body = expectProblem(response, 400, "invalid-request");
    expect(body.errors?.map((e) => e.pointer)).toEqual(["/querystring/dryRun"]);
    expect(body.detail).toContain('the only dry run is "All"');
  });
});
