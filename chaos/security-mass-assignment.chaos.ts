// Mass assignment: every POST and PATCH body of the OpenAPI document, sent with a field the caller
// must not set — status, metadata with a version, version, generation, ids, another tenant's id,
// timestamps, a name on a PATCH, a spec where there is none — at the top of the body and inside
// `spec`, plus prototype-pollution keys (`__proto__`, `constructor.prototype`). The API documents
// strict bodies ("unknown fields are refused", docs/api.md), so each one must answer 400
// application/problem+json `invalid-request` with an error whose pointer names the field (the
// prototype keys: 400 invalid-request), and change nothing: every table of the database and the
// object as the API returns it are the same afterwards. The same body without the field is then
// accepted, so the 400 was about the field.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../src/kernel/index.js";
import { type ApiHarness, seedTenant, startApi } from "../test/support/api.js";
import {
  changedTables,
  fingerprint,
  kindOf,
  lastSegment,
  type Operation,
  OPERATIONS,
  type SeededWithKinds,
  seedEveryKind,
  VALID_SPECS,
  validBody,
} from "../test/support/api-sweep.js";
import { record } from "./support/report.js";

let api: ApiHarness;
let operator: string;
let alpha: SeededWithKinds;
let bravo: SeededWithKinds;

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator");
  alpha = await seedEveryKind(api, await seedTenant(api, "alpha"));
  bravo = await seedEveryKind(api, await seedTenant(api, "bravo"));
});
afterAll(async () => api?.close());

const FORGED_AT = "2000-01-01T00:00:00.000Z";

/** Fields only the platform sets, with values an attacker would like them to have. */
function hostileFields(): Record<string, unknown> {
  return {
    status: {
      observedGeneration: 99,
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Forged",
          message: "forged",
          lastTransitionTime: FORGED_AT,
          observedGeneration: 99,
        },
      ],
      vlanId: 4000,
      cidr: "10.255.0.0/16",
    },
    metadata: { version: 99, generation: 99, tenantId: bravo.tenant.id, id: newId() },
    version: 99,
    generation: 99,
    observedGeneration: 99,
    id: newId(),
    tenantId: bravo.tenant.id,
    tenant: bravo.tenant.name,
    projectId: bravo.project.id,
    environmentId: bravo.environment.id,
    kind: "Tenant",
    createdAt: FORGED_AT,
    updatedAt: FORGED_AT,
    deletionRequestedAt: FORGED_AT,
    datacenter: "dc9",
    name: "renamed",
    spec: { displayName: "forged" },
    state: "succeeded",
    actor: "someone-else",
    vlanId: 4000,
    cidr: "10.255.0.0/16",
  };
}

/**
 * Tenants themselves, their quotas' limits and operator-only routes are called as an operator;
 * the rest as alpha's admin.
 */
function tokenFor(op: Operation): string {
  return op.operatorOnly ||
    op.path === "/tenants" ||
    op.path === "/tenants/{tenant}" ||
    op.path === "/tenants/{tenant}/quotas/{quota}"
    ? operator
    : alpha.adminToken;
}

/** The operation's URL on alpha's own objects. */
function urlFor(op: Operation): string {
  const values: Record<string, string> = {
    tenant: alpha.tenant.id,
    project: alpha.project.id,
    environment: alpha.environment.id,
    name: alpha.resources[kindOf(op.path) ?? "networks"].id,
    task: alpha.task.id,
    // None exists: the action's body is validated before it is looked up.
    quota: "addresses",
    deadLetter: "01a207c8-d2cc-734f-a462-00f8ba530062",
  };
  return `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => values[key] ?? "missing")}`;
}

/** Where to read back what a request to `url` would have changed. */
function readBackUrl(op: Operation, url: string): string {
  if (op.method !== "POST") return url;
  // An action (cancel, replay, discard): the object it acts on.
  if (op.path.endsWith("}/" + lastSegment(op.path))) return url.slice(0, url.lastIndexOf("/"));
  // A create: where the object would be.
  return `${url}/mass-assigned`;
}

/** The object at `url` as the API returns it (a problem's correlation id differs every time). */
async function readBack(token: string, url: string): Promise<string> {
  const r = await api.call(token, { method: "GET", url });
  const { correlationId: _, ...body } = r.json<Record<string, unknown>>();
  return `${r.statusCode} ${JSON.stringify(body)}`;
}

async function currentEtag(token: string, url: string): Promise<Record<string, string>> {
  const r = await api.call(token, { method: "GET", url });
  return { "if-match": String(r.headers.etag ?? '"1"') };
}

interface Attempt {
  /** What the body carries, for the failure list. */
  readonly what: string;
  /** The JSON pointer the 400 must name; undefined for the prototype keys. */
  readonly pointer: string | undefined;
  readonly payload: string;
}

/** Every hostile body for one operation. */
function attemptsFor(op: Operation): Attempt[] {
  const valid = validBody(op, "mass-assigned") ?? {};
  const attempts: Attempt[] = [];
  for (const [field, value] of Object.entries(hostileFields())) {
    if (op.bodyFields.includes(field)) continue;
    attempts.push({
      what: field,
      pointer: `/body/${field}`,
      payload: JSON.stringify({ ...valid, [field]: value }),
    });
  }
  const kind = kindOf(op.path);
  if (kind !== undefined && op.bodyFields.includes("spec")) {
    for (const [field, value] of Object.entries(hostileFields())) {
      if (op.specFields.includes(field)) continue;
      attempts.push({
        what: `spec.${field}`,
        pointer: `/body/spec/${field}`,
        payload: JSON.stringify({ ...valid, spec: { ...VALID_SPECS[kind], [field]: value } }),
      });
    }
  }
  // Keys that would reach Object.prototype if a body were merged into an object carelessly.
  const rest = JSON.stringify(valid).slice(1);
  const comma = rest === "}" ? "" : ",";
  attempts.push(
    {
      what: "__proto__",
      pointer: undefined,
      payload: `{"__proto__":{"status":"forged","tenantId":"${bravo.tenant.id}"}${comma}${rest}`,
    },
    {
      what: "constructor.prototype",
      pointer: undefined,
      payload: `{"constructor":{"prototype":{"status":"forged"}}${comma}${rest}`,
    },
  );
  return attempts;
}

describe("mass assignment", () => {
  it("refuses every field the caller must not set, naming it, and changes nothing", async () => {
    const routes = OPERATIONS.filter(
      (op) => ["POST", "PATCH", "PUT"].includes(op.method) && op.bodyFields.length > 0,
    );
    const violations: string[] = [];
    const controls: string[] = [];
    let hostile = 0;
    let operations = 0;
    for (const op of routes) {
      const token = tokenFor(op);
      const url = urlFor(op);
      const back = readBackUrl(op, url);
      const headers = {
        "content-type": "application/json",
        ...(op.method === "PATCH" ? await currentEtag(token, url) : {}),
      };
      const rowsBefore = await fingerprint(api.t.admin);
      const seenBefore = await readBack(token, back);
      for (const attempt of attemptsFor(op)) {
        const r = await api.call(token, {
          method: op.method,
          url,
          headers,
          payload: attempt.payload,
        });
        hostile++;
        const where = `${op.method} ${op.path} with ${attempt.what}`;
        const problem = r.json<{ type?: string; errors?: { pointer: string }[] }>();
        if (
          r.statusCode !== 400 ||
          !String(r.headers["content-type"]).startsWith("application/problem+json") ||
          problem.type !== "https://dataverket.io/problems/invalid-request"
        ) {
          violations.push(`${where} -> ${r.statusCode} ${r.body.slice(0, 200)}`);
        } else if (
          attempt.pointer !== undefined &&
          !(problem.errors ?? []).some((e) => e.pointer === attempt.pointer)
        ) {
          violations.push(`${where}: 400 without naming ${attempt.pointer}: ${r.body}`);
        }
      }
      // Read back through the database (every row) and the API (the object itself).
      const written = changedTables(rowsBefore, await fingerprint(api.t.admin));
      if (written.length > 0)
        violations.push(`${op.method} ${op.path} wrote ${written.join(", ")}`);
      const seenAfter = await readBack(token, back);
      operations += 2;
      if (seenAfter !== seenBefore)
        violations.push(`${op.method} ${op.path} changed ${back}: ${seenBefore} -> ${seenAfter}`);

      // The same request without the field is accepted (nothing exists to replay or discard).
      const clean = await api.call(token, {
        method: op.method,
        url,
        headers: {
          ...headers,
          ...(op.method === "PATCH" ? await currentEtag(token, url) : {}),
        },
        payload: JSON.stringify(validBody(op, `clean-${lastSegment(op.path)}`)),
      });
      operations++;
      const expected = op.path.startsWith("/dead-letters") ? [404] : [200, 201, 202];
      if (!expected.includes(clean.statusCode))
        controls.push(`${op.method} ${op.path} clean -> ${clean.statusCode} ${clean.body}`);
    }

    record({
      scenario: "security-mass-assignment",
      faults: hostile,
      operations: hostile + operations,
      lost: 0,
      duplicated: 0,
      violations: violations.length,
      figures: { routes: routes.length },
    });
    // Every create and change of the document is covered (tenancy, four kinds, tasks, dead letters).
    expect(routes.length).toBeGreaterThanOrEqual(16);
    expect(violations).toEqual([]);
    expect(controls).toEqual([]);
  });
});
