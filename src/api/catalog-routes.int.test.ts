// The catalog's routes on a real PostgreSQL: what a tenant sees of the platform objects it may
// name (and nothing of who uses them), paging and filters as on every list, problems naming
// what is missing, and the full platform objects for operators only.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PlatformSync } from "../../controllers/index.js";
import { type ApiHarness, expectProblem, startApi } from "../../test/support/api.js";
import { createServices } from "../app/index.js";
import { PlatformStore } from "../contexts/platform/index.js";
import { inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";

let api: ApiHarness;
let reader: string;
let operator: string;

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}
interface Listed<T> {
  items: T[];
  nextCursor?: string;
}
interface Entry {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
  status: { conditions: Condition[]; [field: string]: unknown };
}

const get = async <T>(token: string, url: string): Promise<T> => {
  const r = await api.call(token, { method: "GET", url: `/api/v1${url}` });
  expect(r.statusCode, r.body).toBe(200);
  return r.json<T>();
};

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator");
  const created = await api.call(operator, {
    method: "POST",
    url: "/api/v1/tenants",
    payload: { name: "viewer" },
  });
  expect(created.statusCode).toBe(201);
  reader = await api.token("tenant-reader", "viewer");
  // Two more machine classes, of which no server pool has servers.
  const sync = new PlatformSync(createServices(api.t.db, newId));
  for (const name of ["m0-tiny", "m9-huge"]) {
    const result = await sync.apply({
      kind: "MachineClass",
      name,
      generation: 1,
      spec: { cpuCores: 1, memoryMiB: 1024 },
    });
    expect(result.ok).toBe(true);
  }
});
afterAll(async () => api?.close());

describe("the catalog, as a tenant reader", () => {
  it("shows each datacenter with what it offers and its Ready condition", async () => {
    const { items } = await get<Listed<Entry>>(reader, "/datacenters");
    expect(items).toHaveLength(1);
    const dc1 = items[0];
    expect(dc1).toMatchObject({
      kind: "Datacenter",
      metadata: { name: "dc1" },
      spec: { site: "test", failureDomain: "test-a" },
      status: {
        networkPools: ["dc1-tenant"],
        defaultNetworkPool: "dc1-tenant",
        machineClasses: ["m1-large"],
        objectStorageGiB: { total: 10_000_000, free: 10_000_000 },
      },
    });
    // No platform controller runs here: Ready is there, and Unknown.
    expect(dc1?.status.conditions).toEqual([
      expect.objectContaining({ type: "Ready", status: "Unknown", reason: "NotObserved" }),
    ]);
    // Its endpoints are the platform's business, not a tenant's.
    expect(JSON.stringify(dc1)).not.toContain("jetstream");
  });

  it("shows what is free of each pool and machine class", async () => {
    const pool = await get<Entry>(reader, "/network-pools/dc1-tenant");
    expect(pool.status).toMatchObject({
      vlans: { total: 3900, free: 3900 },
      addresses: { total: 2 ** 20, free: 2 ** 20 },
      largestFreePrefixLength: 12,
    });
    expect(pool.spec).toEqual({
      datacenter: "dc1",
      default: true,
      vlanRanges: [{ start: 100, end: 3999 }],
      prefixes: ["10.64.0.0/12"],
    });
    const rack = await get<Entry>(reader, "/server-pools/dc1-rack-a");
    expect(rack.status).toMatchObject({
      servers: { total: 24, free: 24 },
      machineClasses: [{ machineClass: "m1-large", total: 24, free: 24 }],
    });
    const large = await get<Entry>(reader, "/machine-classes/m1-large");
    expect(large.spec).toEqual({ description: "", cpuCores: 32, memoryMiB: 262144 });
    expect(large.status).toMatchObject({
      servers: { total: 24, free: 24 },
      datacenters: [{ datacenter: "dc1", total: 24, free: 24 }],
    });
  });

  it("pages by name with signed cursors, and narrows to a datacenter", async () => {
    const names: string[] = [];
    let url = "/machine-classes?limit=1";
    for (;;) {
      const page = await get<Listed<Entry>>(reader, url);
      expect(page.items.length).toBeLessThanOrEqual(1);
      names.push(...page.items.map((i) => i.metadata.name));
      if (!page.nextCursor) break;
      url = `/machine-classes?limit=1&cursor=${page.nextCursor}`;
    }
    expect(names).toEqual(["m0-tiny", "m1-large", "m9-huge"]);

    const first = await get<Listed<Entry>>(reader, "/machine-classes?limit=1");
    // A cursor of another list is no cursor of this one.
    const elsewhere = await api.call(reader, {
      method: "GET",
      url: `/api/v1/network-pools?cursor=${first.nextCursor ?? ""}`,
    });
    expect(expectProblem(elsewhere, 400).errors?.[0]?.pointer).toBe("/querystring/cursor");

    const inDc1 = await get<Listed<Entry>>(reader, "/machine-classes?datacenter=dc1");
    expect(inDc1.items.map((i) => i.metadata.name)).toEqual(["m1-large"]);
    expect((await get<Listed<Entry>>(reader, "/network-pools?datacenter=dc9")).items).toEqual([]);
  });

  it("answers a name the platform does not have with a 404 naming it, and refuses labels", async () => {
    const missing = await api.call(reader, { method: "GET", url: "/api/v1/machine-classes/web" });
    expect(expectProblem(missing, 404, "not-found").detail).toBe('MachineClass "web" not found');
    const selector = await api.call(reader, {
      method: "GET",
      url: "/api/v1/datacenters?labelSelector=a%3Db",
    });
    expectProblem(selector, 400);
  });

  it("does not say who holds a pool whose deletion waits, which an operator sees", async () => {
    const user = `network ${newId()}`;
    const platform = new PlatformStore(api.t.db);
    const at = new Date().toISOString();
    await inTransaction(api.t.db, (tx) =>
      platform.setStatus(
        tx,
        "NetworkPool",
        "dc1-tenant",
        {
          observedGeneration: 1,
          usedBy: [user],
          vlans: { total: 3900, free: 3899 },
          conditions: [
            {
              type: "Ready",
              status: "False",
              reason: "InUse",
              message: `deletion waits: NetworkPool dc1-tenant is used by ${user}`,
              lastTransitionTime: at,
              observedGeneration: 1,
            },
            {
              type: "Reconciling",
              status: "True",
              reason: "InUse",
              message: `deletion waits: NetworkPool dc1-tenant is used by ${user}`,
              lastTransitionTime: at,
              observedGeneration: 1,
            },
          ],
        },
        1,
      ),
    );
    const seen = await api.call(reader, { method: "GET", url: "/api/v1/network-pools/dc1-tenant" });
    expect(seen.statusCode).toBe(200);
    expect(seen.body).not.toContain(user);
    const pool = seen.json<Entry>();
    expect(pool.status.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ["Ready", "False", "InUse"],
      ["Reconciling", "True", "InUse"],
    ]);
    expect(pool.status.usedBy).toBeUndefined();

    const full = await get<{ status: { usedBy: string[] } }>(
      operator,
      "/platform/networkpools/dc1-tenant",
    );
    expect(full.status.usedBy).toEqual([user]);
  });
});

describe("the platform objects with full status", () => {
  it("are for operators only", async () => {
    const refused = await api.call(reader, { method: "GET", url: "/api/v1/platform/datacenters" });
    expectProblem(refused, 403, "forbidden");

    const { items } = await get<Listed<{ kind: string; spec: Record<string, unknown> }>>(
      operator,
      "/platform/machineclasses",
    );
    expect(items.map((i) => i.kind)).toEqual(["MachineClass", "MachineClass", "MachineClass"]);
    const dc1 = await get<{ spec: Record<string, unknown> }>(operator, "/platform/datacenters/dc1");
    expect(dc1.spec).toMatchObject({ site: "test", objectStorageGiB: 10_000_000 });
    expectProblem(
      await api.call(operator, { method: "GET", url: "/api/v1/platform/serverpools/nope" }),
      404,
    );
    expectProblem(
      await api.call(operator, { method: "GET", url: "/api/v1/platform/widgets" }),
      400,
    );
  });
});
