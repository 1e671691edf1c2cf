// The catalog, end to end (issue 21): a client that knows only the OpenAPI document the API
// serves and a tenant token discovers a datacenter, a machine class and a network pool, creates
// a network, a server and a cluster with them, and each reaches Ready — on the whole control
// plane (platform controllers on the configuration directory, tenant controllers, the nett, maskin
// and plattform workers) behind a real HTTP port. Then `dv get` shows the same catalog.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type Plane, startPlane } from "../../test/support/plane.js";
import { runDv } from "../../test/support/process.js";
import { type ServedPlane, servePlane } from "../../test/support/served-plane.js";

let p: Plane;
let served: ServedPlane;
let origin: string;
let operatorToken: string;
let tenantToken: string;

beforeAll(async () => {
  p = await startPlane({ controllers: true, workers: ["nett", "maskin", "plattform"] });
  served = await servePlane(p);
  origin = served.origin;
  operatorToken = await served.token("operator");
  const tenant = await fetch(`${origin}/api/v1/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${operatorToken}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "acme" }),
  });
  expect(tenant.status).toBe(201);
  tenantToken = await served.token("tenant-admin", "acme");
}, 120_000);

afterAll(async () => {
  await served?.close();
  await p?.close();
});

// ------------------------------------------------------------------ a client of the document

interface Document {
  servers: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
}
interface Operation {
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> };
  responses: Record<string, { content?: Record<string, { schema: { $ref?: string } }> }>;
}
interface Condition {
  type: string;
  status: string;
}
interface Named {
  metadata: { name: string };
  status: { conditions: Condition[]; [field: string]: unknown };
}

const isReady = (o: Named): boolean =>
  o.status.conditions.some((c) => c.type === "Ready" && c.status === "True");

/** What the client learns from the document alone: the paths whose schemas have these names. */
function pathsOf(document: Document) {
  const refName = (schema: { $ref?: string } | undefined) => schema?.$ref?.split("/").pop();
  /** The path whose GET answers a list of `schema` (`DatacenterList`). */
  const listing = (list: string): string => {
    const found = Object.entries(document.paths).find(
      ([, ops]) =>
        refName(ops.get?.responses["200"]?.content?.["application/json"]?.schema) === list,
    );
    if (!found) throw new Error(`the document lists no ${list}`);
    return found[0];
  };
  /** The path whose POST takes a body of `schema` (`NetworkCreateInput`). */
  const creating = (body: string): string => {
    const found = Object.entries(document.paths).find(
      ([, ops]) => refName(ops.post?.requestBody?.content["application/json"]?.schema) === body,
    );
    if (!found) throw new Error(`the document creates no ${body}`);
    return found[0];
  };
  return { listing, creating };
}

/** `/tenants/{tenant}/…` with the parameters filled in. */
const fill = (template: string, values: Record<string, string>): string =>
  template.replace(/\{(\w+)\}/g, (_m, key: string) => {
    const value = values[key];
    if (value === undefined) throw new Error(`no value for {${key}} of ${template}`);
    return encodeURIComponent(value);
  });

describe("a client with only the served OpenAPI document and a tenant token", () => {
  it("discovers a datacenter, a machine class and a network pool, and builds on them until Ready", async () => {
    const served = await fetch(`${origin}/api/v1/openapi.json`);
    expect(served.status).toBe(200);
    const document = (await served.json()) as Document;
    const base = `${origin}${document.servers[0]?.url ?? ""}`;
    const { listing, creating } = pathsOf(document);
    const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${tenantToken}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
      return JSON.parse(text) as T;
    };
    const list = <T>(path: string, query = "") =>
      call<{ items: T[] }>("GET", `${path}${query}`).then((r) => r.items);

    // Discover: a Ready datacenter, then what it offers — a Ready machine class with room for a
    // server and a one-worker cluster, and a Ready pool with a free VLAN and a /24.
    type Datacenter = Named & { status: { machineClasses: string[]; defaultNetworkPool: string } };
    const datacenter = await eventually(
      async () => (await list<Datacenter>(listing("DatacenterList"))).find(isReady),
      30_000,
      "a Ready datacenter in the catalog",
    );
    const dc = datacenter.metadata.name;
    type Counted = { total: number; free: number };
    type MachineClass = Named & { status: { servers: Counted } };
    const machineClassesPath = listing("MachineClassList");
    const machineClass = await eventually(
      async () =>
        (await list<MachineClass>(machineClassesPath, `?datacenter=${dc}`)).find(
          (m) => isReady(m) && m.status.servers.free >= 3,
        ),
      30_000,
      "a Ready machine class with free servers",
    );
    type NetworkPool = Named & {
      status: { vlans: Counted; addresses: Counted; largestFreePrefixLength: number | null };
    };
    const networkPoolsPath = listing("NetworkPoolList");
    const pool = await eventually(
      async () =>
        (await list<NetworkPool>(networkPoolsPath, `?datacenter=${dc}`)).find(
          (n) =>
            isReady(n) &&
            n.status.vlans.free >= 2 &&
            (n.status.largestFreePrefixLength ?? 99) <= 24,
        ),
      30_000,
      "a Ready network pool with room",
    );
    expect(datacenter.status.machineClasses).toContain(machineClass.metadata.name);
    expect(pool.metadata.name).toBe(datacenter.status.defaultNetworkPool);

    // Create: a project, an environment in the datacenter, and with what was discovered a
    // network, a server on it and a cluster.
    const values: Record<string, string> = { tenant: "acme" };
    await call("POST", fill(creating("ProjectCreateInput"), values), { name: "shop" });
    values.project = "shop";
    await call("POST", fill(creating("EnvironmentCreateInput"), values), {
      name: "prod",
      datacenter: dc,
    });
    values.environment = "prod";
    const requests = [
      {
        body: "NetworkCreateInput",
        name: "frontend",
        spec: { networkPool: pool.metadata.name, prefixLength: 24 },
      },
      {
        body: "ServerCreateInput",
        name: "web-1",
        spec: { machineClass: machineClass.metadata.name, network: "frontend" },
      },
      {
        body: "ClusterCreateInput",
        name: "apps",
        spec: { machineClass: machineClass.metadata.name, workers: 1, prefixLength: 24 },
      },
    ];
    const created: string[] = [];
    for (const r of requests) {
      const path = fill(creating(r.body), values);
      const task = await call<{ kind: string; state: string }>("POST", path, {
        name: r.name,
        spec: r.spec,
      });
      expect(task.kind).toBe("Task");
      created.push(`${path}/${r.name}`);
    }

    // Each reaches Ready.
    for (const path of created) {
      const resource = await eventually(
        async () => {
          const r = await call<Named>("GET", path);
          return isReady(r) ? r : undefined;
        },
        60_000,
        `${path} to be Ready`,
      );
      expect(resource.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
    }

    // And the catalog shows what they took: a VLAN and a /24 each for the network and the
    // cluster; one server for the server and workers + 1 for the cluster.
    const poolNow = await call<NetworkPool>("GET", `${networkPoolsPath}/${pool.metadata.name}`);
    expect(poolNow.status.vlans.free).toBe(pool.status.vlans.free - 2);
    expect(poolNow.status.addresses.free).toBe(pool.status.addresses.free - 2 * 256);
    const classNow = await call<MachineClass>(
      "GET",
      `${machineClassesPath}/${machineClass.metadata.name}`,
    );
    expect(classNow.status.servers.free).toBe(machineClass.status.servers.free - 3);
  }, 180_000);
});

describe("dv get, through the same API", () => {
  const dv = (token: string, ...args: string[]) =>
    runDv(args, { DV_SERVER: origin, DV_TOKEN: token });

  it("lists the platform's objects as a table with READY and what is free, and as {items}", async () => {
    const table = await dv(tenantToken, "get", "datacenters");
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+SITE\s+NETWORK POOLS/m);
    expect(table.stdout).toMatch(/^dc1\s+True\s+\S+\s+test\s+dc1-tenant\s+m1-large\s+\d+\/\d+/m);

    const pools = await dv(tenantToken, "get", "np", "-o", "json");
    expect(pools.code, pools.stderr).toBe(0);
    const parsed = JSON.parse(pools.stdout) as { items: NetworkPoolJson[] };
    expect(parsed.items.map((i) => i.metadata.name)).toEqual(["dc1-tenant"]);
    expect(parsed.items[0]?.status.vlans.total).toBe(3900);

    const classes = await dv(tenantToken, "get", "machineclass", "m1-large", "-o", "wide");
    expect(classes.code, classes.stderr).toBe(0);
    expect(classes.stdout).toMatch(
      /^m1-large\s+True\s+\S+\s+32\s+262144\s+\d+\/24\s.*dc1=\d+\/24/m,
    );

    const servers = await dv(tenantToken, "get", "sp", "-o", "yaml");
    expect(servers.code, servers.stderr).toBe(0);
    expect(servers.stdout).toMatch(/^items:\n/);
    expect(servers.stdout).toContain("name: dc1-rack-a");
  });

  it("says in one line what is missing or not allowed, with the documented exit codes", async () => {
    const missing = await dv(tenantToken, "get", "mc", "web");
    expect(missing.code).toBe(4);
    expect(missing.stderr.trim().split("\n")).toHaveLength(1);
    expect(missing.stderr).toContain('MachineClass "web" not found');

    const policies = await dv(tenantToken, "get", "platformpolicies");
    expect(policies.code).toBe(1);
    expect(policies.stderr).toContain("only operators may read the platform configuration");

    const selector = await dv(tenantToken, "get", "datacenters", "-l", "a=b");
    expect(selector.code).toBe(2);
    expect(selector.stderr).toContain("datacenters have no labels");

    // Operators read the full status of every platform kind.
    const asOperator = await dv(operatorToken, "get", "networkpools", "-o", "json");
    expect(asOperator.code, asOperator.stderr).toBe(0);
    const full = await dv(operatorToken, "get", "recoverypolicies");
    expect(full.code, full.stderr).toBe(0);
    expect(full.stdout).toBe("No recoverypolicies found.\n");
  });
});

interface NetworkPoolJson {
  metadata: { name: string };
  status: { vlans: { total: number; free: number } };
}
