// Tenant isolation, generated from the OpenAPI document: every route × tenant A's tokens × tenant
// B's ids (and names) answers 404 (or 403 for operator routes) and returns not a byte of B's data.
// A route added later is covered without touching this file.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../../test/support/api.js";
import { packageRoot } from "../meta/index.js";

interface Operation {
  readonly method: string;
  readonly path: string;
}

const document = JSON.parse(readFileSync(`${packageRoot()}/docs/api/openapi.json`, "utf8")) as {
  paths: Record<string, Record<string, unknown>>;
};
const operations: Operation[] = Object.entries(document.paths).flatMap(([path, methods]) =>
  Object.keys(methods)
    .filter((m) => ["get", "post", "patch", "delete", "put"].includes(m))
    .map((method) => ({ method: method.toUpperCase(), path })),
);

let api: ApiHarness;
let a: Seeded;
let b: Seeded;
const bResources: Record<string, { id: string; name: string }> = {};
let secrets: string[] = [];

beforeAll(async () => {
  api = await startApi();
  a = await seedTenant(api, "alpha");
  b = await seedTenant(api, "bravo");
  bResources.networks = b.network;
  const base = `/api/v1/tenants/${b.tenant.id}/projects/${b.project.id}/environments/${b.environment.id}`;
  const specs: Record<string, unknown> = {
    servers: { machineClass: "m1-large" },
    clusters: { machineClass: "m1-large" },
    buckets: { quotaGiB: 5 },
  };
  for (const [kind, spec] of Object.entries(specs)) {
    const r = await api.call(b.adminToken, {
      method: "POST",
      url: `${base}/${kind}`,
      payload: { name: `bravo-${kind}`, spec },
    });
    bResources[kind] = {
      id: r.json<{ resource: { id: string } }>().resource.id,
      name: `bravo-${kind}`,
    };
  }
  secrets = [
    b.tenant.id,
    b.project.id,
    b.environment.id,
    b.task.id,
    ...Object.values(bResources).flatMap((r) => [r.id, r.name]),
    "bravo-web",
    "bravo-prod",
  ];
});
afterAll(async () => api.close());

/** A body the route's schema accepts, so the request reaches the tenant check. */
function bodyFor(op: Operation): unknown {
  const last =
    op.path
      .split("/")
      .filter((s) => !s.startsWith("{"))
      .pop() ?? "";
  if (op.method === "PATCH")
    return last === "environments" ? { labels: { a: "b" } } : { labels: { a: "b" } };
  if (op.method !== "POST") return undefined;
  switch (last) {
    case "tenants":
    case "projects":
      return { name: "intruder" };
    case "environments":
      return { name: "intruder", datacenter: "dc1" };
    case "networks":
      return { name: "intruder", spec: {} };
    case "servers":
    case "clusters":
      return { name: "intruder", spec: { machineClass: "m1-large" } };
    case "buckets":
      return { name: "intruder", spec: { quotaGiB: 1 } };
    case "cancel":
      return {};
    case "replay":
    case "discard":
      return { reason: "intruder" };
    default:
      return {};
  }
}

function urlFor(op: Operation, by: "id" | "name"): string {
  const kind = /\/(networks|servers|clusters|buckets)\//.exec(`${op.path}/`)?.[1] ?? "networks";
  const values: Record<string, string> = {
    tenant: by === "id" ? b.tenant.id : b.tenant.name,
    project: by === "id" ? b.project.id : b.project.name,
    environment: by === "id" ? b.environment.id : b.environment.name,
    name: by === "id" ? (bResources[kind]?.id ?? "") : (bResources[kind]?.name ?? ""),
    task: b.task.id,
    // No dead letter exists; operator-only routes must refuse before looking.
    deadLetter: "01a207c8-d2cc-734f-a462-00f8ba530062",
    backup: "01a207c8-d2cc-734f-a462-00f8ba530063",
  };
  return `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => values[key] ?? "missing")}`;
}

describe("tenant isolation across every route of the OpenAPI document", () => {
  it("covers every route", () => {
    expect(operations.length).toBeGreaterThanOrEqual(30);
  });

  for (const role of ["tenant-admin", "tenant-reader"] as const) {
    for (const by of ["id", "name"] as const) {
      it(`${role} of tenant A, B's ${by}s: 404 or 403, and nothing of B's`, async () => {
        const token = await api.token(role, "alpha");
        const failures: string[] = [];
        for (const op of operations) {
          const url = urlFor(op, by);
          const body = bodyFor(op);
          const response = await api.call(token, {
            method: op.method,
            url,
            headers: { "if-match": '"1"' },
            ...(body === undefined ? {} : { payload: body as object }),
          });
          // Operator-only actions are 403 whatever the target; everything else 404 as if B did not exist.
          const operatorOnly = !op.path.includes("{tenant}");
          const allowed = operatorOnly ? [403] : [403, 404];
          if (!allowed.includes(response.statusCode))
            failures.push(`${op.method} ${op.path} -> ${response.statusCode}`);
          // A leak is something of B's the request did not already carry (echoing the URL is not).
          const sent = `${url} ${JSON.stringify(body ?? "")}`;
          const leaked = secrets.filter((s) => response.body.includes(s) && !sent.includes(s));
          if (leaked.length > 0)
            failures.push(`${op.method} ${op.path} leaked ${leaked.join(", ")}`);
        }
        expect(failures).toEqual([]);
      });
    }
  }

  it("is not vacuous: A reads its own resources on the same GET routes", async () => {
    const own: Record<string, string> = {
      tenant: a.tenant.id,
      project: a.project.id,
      environment: a.environment.id,
      name: a.network.id,
      task: a.task.id,
    };
    const statuses: string[] = [];
    for (const op of operations.filter(
      (o) => o.method === "GET" && o.path.includes("{tenant}") && !o.path.endsWith("/events"),
    )) {
      if (/(servers|clusters|buckets)\/\{name\}/.test(op.path)) continue;
      const url = `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => own[key] ?? "")}`;
      const response = await api.call(a.adminToken, { method: "GET", url });
      statuses.push(`${op.path} ${response.statusCode}`);
    }
    expect(statuses.filter((s) => !s.endsWith(" 200"))).toEqual([]);
  });
});
