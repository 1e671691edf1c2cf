// Tenant isolation, generated from the OpenAPI document: every route × one tenant's admin and
// reader tokens × the other tenant's ids and names answers 404 (403 on operator routes, 200 on
// the catalog of platform objects, which every caller reads alike), returns
// not a byte of the other tenant's data, and writes nothing (every table of the database is
// unchanged by the sweep). The same routes with the tenant's own ids answer 200, so the 404s are
// about the tenant and not a broken request. A route added later is swept without touching this
// file. Quick: tenant A against B; full: B against A as well.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, seedTenant, startApi } from "../test/support/api.js";
import {
  CATALOG_VALUES,
  changedTables,
  fingerprint,
  kindOf,
  type Operation,
  OPERATIONS,
  type SeededWithKinds,
  seedEveryKind,
  validBody,
} from "../test/support/api-sweep.js";
import { record, size } from "./support/report.js";

let api: ApiHarness;
let alpha: SeededWithKinds;
let bravo: SeededWithKinds;

beforeAll(async () => {
  api = await startApi();
  alpha = await seedEveryKind(api, await seedTenant(api, "alpha"));
  bravo = await seedEveryKind(api, await seedTenant(api, "bravo"));
});
afterAll(async () => api?.close());

/** What of the victim's a response must never carry unless the request did. */
function secretsOf(victim: SeededWithKinds): string[] {
  return [
    victim.tenant.id,
    victim.project.id,
    victim.environment.id,
    victim.task.id,
    victim.project.name,
    victim.environment.name,
    ...Object.values(victim.resources).flatMap((r) => [r.id, r.name]),
  ];
}

/** The operation's URL with the victim's ids (or names) in every parameter. */
function urlFor(op: Operation, victim: SeededWithKinds, by: "id" | "name"): string {
  const resource = victim.resources[kindOf(op.path) ?? "networks"];
  const values: Record<string, string> = {
    ...CATALOG_VALUES,
    tenant: by === "id" ? victim.tenant.id : victim.tenant.name,
    project: by === "id" ? victim.project.id : victim.project.name,
    environment: by === "id" ? victim.environment.id : victim.environment.name,
    name: by === "id" ? resource.id : resource.name,
    task: victim.task.id,
    // No dead letter or backup exists; operator-only routes must refuse before looking.
    quota: "addresses",
    deadLetter: "01a207c8-d2cc-734f-a462-00f8ba530062",
    backup: "01a207c8-d2cc-734f-a462-00f8ba530063",
  };
  return `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => values[key] ?? "missing")}`;
}

/** Every route with `attacker`'s tokens against `victim`'s ids and names; what went wrong. */
async function sweep(
  attacker: SeededWithKinds,
  victim: SeededWithKinds,
): Promise<{ requests: number; failures: string[] }> {
  const secrets = secretsOf(victim);
  const failures: string[] = [];
  let requests = 0;
  for (const role of ["tenant-admin", "tenant-reader"] as const) {
    const token = await api.token(role, attacker.tenant.name);
    for (const by of ["id", "name"] as const) {
      for (const op of OPERATIONS) {
        const url = urlFor(op, victim, by);
        const body = validBody(op);
        const response = await api.call(token, {
          method: op.method,
          url,
          headers: { "if-match": '"1"' },
          ...(body === undefined ? {} : { payload: body }),
        });
        requests++;
        const where = `${attacker.tenant.name} ${role} ${op.method} ${op.path} (by ${by})`;
        // Operator-only actions are 403 whatever the target; anything else is 404 as if the
        // victim did not exist (403 is allowed too: a reader refused before the lookup).
        // The catalog is the platform's, the same for every caller.
        const allowed = op.shared ? [200] : op.operatorOnly ? [403] : [403, 404];
        if (!allowed.includes(response.statusCode))
          failures.push(`${where} -> ${response.statusCode}`);
        // A leak is something of the victim's the request did not already carry (echoing the
        // URL is not one).
        const sent = `${url} ${JSON.stringify(body ?? "")}`;
        const leaked = secrets.filter((s) => response.body.includes(s) && !sent.includes(s));
        if (leaked.length > 0) failures.push(`${where} leaked ${leaked.join(", ")}`);
      }
    }
  }
  return { requests, failures };
}

/** The tenant's own GET routes with its own ids: anything but 200 means the sweep proves nothing. */
async function ownReads(self: SeededWithKinds): Promise<{ requests: number; failures: string[] }> {
  const failures: string[] = [];
  let requests = 0;
  for (const op of OPERATIONS) {
    // Event streams stay open until their task ends; the task's own GET covers the route's check.
    if (op.method !== "GET" || op.operatorOnly || op.path.endsWith("/events")) continue;
    const resource = self.resources[kindOf(op.path) ?? "networks"];
    const own: Record<string, string> = {
      ...CATALOG_VALUES,
      tenant: self.tenant.id,
      project: self.project.id,
      environment: self.environment.id,
      name: resource.id,
      task: self.task.id,
    };
    const url = `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => own[key] ?? "")}`;
    const response = await api.call(self.adminToken, { method: "GET", url });
    requests++;
    if (response.statusCode !== 200) failures.push(`own GET ${op.path} -> ${response.statusCode}`);
  }
  return { requests, failures };
}

describe("tenant isolation across every route of the OpenAPI document", () => {
  it("gives one tenant's tokens 404 or 403 on everything of another's, and writes nothing", async () => {
    const directions = size(
      [
        [alpha, bravo],
        [bravo, alpha],
      ] as const,
      [[alpha, bravo]] as const,
    );
    const before = await fingerprint(api.t.admin);
    let hostile = 0;
    const failures: string[] = [];
    for (const [attacker, victim] of directions) {
      const result = await sweep(attacker, victim);
      hostile += result.requests;
      failures.push(...result.failures);
    }
    const written = changedTables(before, await fingerprint(api.t.admin));
    const own = [await ownReads(alpha), await ownReads(bravo)];
    const ownFailures = own.flatMap((o) => o.failures);

    record({
      scenario: "security-isolation",
      faults: hostile,
      operations: hostile + own.reduce((n, o) => n + o.requests, 0),
      lost: 0,
      duplicated: 0,
      violations: failures.length + written.length,
      figures: {
        routes: OPERATIONS.length,
        directions: directions.length,
        tables_written: written.length,
        own_reads_not_200: ownFailures.length,
      },
    });
    // Every route of the document is swept (a document read wrongly would sweep nothing).
    expect(OPERATIONS.length).toBeGreaterThanOrEqual(30);
    expect(failures).toEqual([]);
    expect(written, "tables changed by requests that were all refused").toEqual([]);
    expect(ownFailures).toEqual([]);
  });
});
