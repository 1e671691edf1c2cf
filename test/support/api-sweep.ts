// What the security checks of `npm run chaos` (chaos/security-*.chaos.ts) share to sweep the public
// API: its routes read from the committed OpenAPI document (so a route added later is swept
// without touching a check), a body each route's schema accepts, a tenant with one resource of
// every kind, and a fingerprint of every row of the database, to prove a refused request wrote
// nothing at all.
import { readFileSync } from "node:fs";
import type { Database } from "../../src/db/index.js";
import { packageRoot } from "../../src/meta/index.js";
import type { ApiHarness, Seeded } from "./api.js";

/** One operation of the OpenAPI document. */
export interface Operation {
  /** `GET`, `POST`, `PATCH`, `PUT` or `DELETE`. */
  readonly method: string;
  /** The OpenAPI path, under `/api/v1`: `/tenants/{tenant}/projects`. */
  readonly path: string;
  /** The fields its JSON body may have (empty: no body, or one without properties). */
  readonly bodyFields: readonly string[];
  /** The fields of the body's `spec`, when the body has one. */
  readonly specFields: readonly string[];
  /** Whether only operators may call it (its path is not under a tenant, nor the catalog's). */
  readonly operatorOnly: boolean;
  /** Whether every caller reads the same: the catalog of platform objects. */
  readonly shared: boolean;
}

interface JsonSchema {
  readonly $ref?: string;
  readonly properties?: Record<string, JsonSchema>;
}

interface OpenApiDocument {
  readonly paths: Record<string, Record<string, { requestBody?: unknown }>>;
  readonly components: { readonly schemas: Record<string, JsonSchema> };
}

const document = JSON.parse(
  readFileSync(`${packageRoot()}/docs/api/openapi.json`, "utf8"),
) as OpenApiDocument;

function resolve(schema: JsonSchema | undefined): JsonSchema | undefined {
  const ref = schema?.$ref?.replace("#/components/schemas/", "");
  return ref === undefined ? schema : document.components.schemas[ref];
}

/** The catalog's paths: platform objects every caller reads (not `/platform`, operators'). */
const isCatalog = (path: string): boolean =>
  /^\/(datacenters|machine-classes|network-pools|server-pools)(\/|$)/.test(path);

/** Path parameters of the catalog and `/platform`: objects of test/fixtures/platform. */
export const CATALOG_VALUES: Readonly<Record<string, string>> = {
  datacenter: "dc1",
  machineClass: "m1-large",
  networkPool: "dc1-tenant",
  serverPool: "dc1-rack-a",
  kind: "datacenters",
  object: "dc1",
};

/** Every operation of docs/api/openapi.json (the document `npm test` keeps up to date). */
export const OPERATIONS: readonly Operation[] = Object.entries(document.paths).flatMap(
  ([path, methods]) =>
    Object.entries(methods)
      .filter(([m]) => ["get", "post", "patch", "delete", "put"].includes(m))
      .map(([method, operation]) => {
        const body = resolve(
          (
            operation.requestBody as
              { content?: Record<string, { schema?: JsonSchema }> } | undefined
          )?.content?.["application/json"]?.schema,
        );
        return {
          method: method.toUpperCase(),
          path,
          bodyFields: Object.keys(body?.properties ?? {}),
          specFields: Object.keys(resolve(body?.properties?.spec)?.properties ?? {}),
          operatorOnly: !path.includes("{tenant}") && !isCatalog(path),
          shared: isCatalog(path),
        };
      }),
);

/** The infrastructure kinds, by their path segment. */
export const RESOURCE_KINDS = ["networks", "servers", "clusters", "buckets"] as const;
export type ResourceKindPath = (typeof RESOURCE_KINDS)[number];

/** A spec each kind's schema accepts. */
export const VALID_SPECS: Readonly<Record<ResourceKindPath, Record<string, unknown>>> = {
  networks: {},
  servers: { machineClass: "m1-large" },
  clusters: { machineClass: "m1-large" },
  buckets: { quotaGiB: 5 },
};

/** The last literal segment of an OpenAPI path: `networks`, `cancel`, `projects`, … */
export function lastSegment(path: string): string {
  return (
    path
      .split("/")
      .filter((s) => s !== "" && !s.startsWith("{"))
      .pop() ?? ""
  );
}

/** The resource kind an operation's path is about, if any. */
export function kindOf(path: string): ResourceKindPath | undefined {
  return RESOURCE_KINDS.find((k) => path.includes(`/${k}`));
}

/**
 * A body the operation's schema accepts (so a request reaches the checks behind validation), or
 * undefined for operations without one. `name` names what a POST creates.
 */
export function validBody(op: Operation, name = "intruder"): Record<string, unknown> | undefined {
  if (op.method === "PATCH") return { labels: { a: "b" } };
  if (op.method === "PUT") return { limits: { "*": 1 } };
  if (op.method !== "POST") return undefined;
  const kind = kindOf(op.path);
  switch (lastSegment(op.path)) {
    case "tenants":
    case "projects":
      return { name };
    case "environments":
      return { name, datacenter: "dc1" };
    case "networks":
    case "servers":
    case "clusters":
    case "buckets":
      return { name, spec: { ...VALID_SPECS[kind ?? "networks"] } };
    case "replay":
    case "discard":
      return { reason: "checking" };
    default:
      return {};
  }
}

/** The id and name of one object. */
export interface Named {
  readonly id: string;
  readonly name: string;
}

/** A seeded tenant (test/support/api.ts) and one resource of every kind in its environment. */
export interface SeededWithKinds extends Seeded {
  readonly resources: Readonly<Record<ResourceKindPath, Named>>;
}

/** The environment path of a seeded tenant, under `/api/v1`, by ids. */
export const environmentUrl = (s: Seeded): string =>
  `/api/v1/tenants/${s.tenant.id}/projects/${s.project.id}/environments/${s.environment.id}`;

/** Adds a server, a cluster and a bucket (named `<tenant>-<kind>`) beside the seeded network. */
export async function seedEveryKind(api: ApiHarness, s: Seeded): Promise<SeededWithKinds> {
  const resources: Partial<Record<ResourceKindPath, Named>> = { networks: s.network };
  for (const kind of RESOURCE_KINDS) {
    if (kind === "networks") continue;
    const name = `${s.tenant.name}-${kind}`;
    const r = await api.call(s.adminToken, {
      method: "POST",
      url: `${environmentUrl(s)}/${kind}`,
      payload: { name, spec: VALID_SPECS[kind] },
    });
    if (r.statusCode !== 202) throw new Error(`seeding ${kind}: ${r.statusCode} ${r.body}`);
    resources[kind] = { id: r.json<{ resource: { id: string } }>().resource.id, name };
  }
  return { ...s, resources: resources as Record<ResourceKindPath, Named> };
}

/** A digest of every row of one table, by `schema.table`. */
export type Fingerprint = Readonly<Record<string, string>>;

// Leases are renewed on a clock, not by requests; nothing an API request does is in them.
const CLOCKED = new Set(["runtime.leases", "runtime.lease_members"]);

/**
 * Fingerprints every table of every context (row count and an md5 of all rows), through the
 * superuser connection `admin`: two equal fingerprints mean nothing was inserted, changed or
 * deleted in between.
 */
export async function fingerprint(admin: Database): Promise<Fingerprint> {
  const tables = await admin.query<{ name: string }>(
    `SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE'
        AND table_schema IN ('tenancy', 'inventory', 'task', 'audit', 'runtime', 'platform')
      ORDER BY 1`,
  );
  const out: Record<string, string> = {};
  for (const { name } of tables) {
    if (CLOCKED.has(name)) continue;
    const quoted = name
      .split(".")
      .map((p) => `"${p}"`)
      .join(".");
    const [row] = await admin.query<{ n: number; h: string }>(
      `SELECT count(*)::int AS n, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') AS h FROM ${quoted} t`,
    );
    out[name] = `${row?.n ?? 0}:${row?.h ?? ""}`;
  }
  return out;
}

/** The tables whose rows differ between two fingerprints. */
export function changedTables(before: Fingerprint, after: Fingerprint): string[] {
  const names = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...names].filter((n) => before[n] !== after[n]).sort();
}
