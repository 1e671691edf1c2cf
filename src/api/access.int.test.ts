// Who may do what, swept: every operation of the document the API serves × every role (operator,
// tenant-admin, tenant-reader) × scope (tenant-wide, project-scoped), against objects inside the
// caller's scope and outside it (another tenant's; for a project-scoped token, another project's
// of its own tenant). Each answer must be the one the table "Who may do what" of docs/api.md
// gives — that table is read here, so the two cannot drift apart, and an operation without a row
// fails the test — never a 5xx, and never carry anything of another tenant's (or, for a
// project-scoped token, of another project's) that the request did not name itself.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, seedTenant, startApi } from "../../test/support/api.js";
import {
  CATALOG_VALUES,
  kindOf,
  lastSegment,
  RESOURCE_KINDS,
  type ResourceKindPath,
  seedEveryKind,
  type SeededWithKinds,
  VALID_SPECS,
  validBody,
} from "../../test/support/api-sweep.js";
import { AuditStore } from "../contexts/audit/index.js";
import { DeadLetterStore, InboxStore, OutboxStore } from "../contexts/runtime/index.js";
import { newId } from "../kernel/index.js";
import { packageRoot } from "../meta/index.js";
import { DeadLetterService, TaskService } from "../workflow/index.js";

/** The columns of the table, in order. */
const COLUMNS = [
  "operator",
  "tenant-admin",
  "tenant-reader",
  "tenant-admin, project-scoped",
  "tenant-reader, project-scoped",
] as const;
type Column = (typeof COLUMNS)[number];

/** The table of docs/api.md: `METHOD /path` → the status each column gets within its scope. */
function readTable(): Map<string, Record<Column, number>> {
  const text = readFileSync(`${packageRoot()}/docs/api.md`, "utf8");
  const section = text.split("\n## Who may do what\n")[1]?.split("\n## ")[0] ?? "";
  const rows = new Map<string, Record<Column, number>>();
  for (const line of section.split("\n")) {
    const match = /^\| `(GET|POST|PUT|PATCH|DELETE) (\S+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!match) continue;
    const cells = (match[3] ?? "").split("|").map((c) => Number(c.trim()));
    rows.set(
      `${match[1]} ${match[2]}`,
      Object.fromEntries(COLUMNS.map((c, i) => [c, cells[i] ?? NaN])) as Record<Column, number>,
    );
  }
  return rows;
}

interface Operation {
  readonly method: string;
  readonly path: string;
  /** Enum values of the path parameters that have one (a quota's name). */
  readonly enums: Readonly<Record<string, string>>;
}

interface ServedDocument {
  readonly paths: Record<
    string,
    Record<string, { parameters?: { in: string; name: string; schema?: { enum?: string[] } }[] }>
  >;
}

let api: ApiHarness;
let operations: Operation[];
/** The caller's tenant: `home-web` is the project-scoped tokens' project, `zeta` the other one. */
let home: SeededWithKinds;
let zeta: Omit<SeededWithKinds, "adminToken" | "tenant">;
/** Another tenant. */
let away: SeededWithKinds;
/** A task of `home-web` that has ended (its event stream ends at once). */
let endedTask: string;
let deadLetters: { replay: string; discard: string };
let backupId: string;
let operator: string;

/** Records an open dead letter for a task of `home`, as a worker would. */
async function deadLetter(service: DeadLetterService): Promise<string> {
  const messageId = newId();
  await service.record({
    consumer: "dv-nett",
    service: "nett",
    messageId,
    subject: "dv.nett.cmd.apply",
    envelope: {
      specversion: "1.0",
      id: messageId,
      type: "nett.network.apply",
      source: "sentral",
      subject: home.network.id,
      tenant_id: home.tenant.id,
      project_id: home.project.id,
      datacenter_id: "dc1",
      correlation_id: "sweep",
      data: { resource_kind: "network", resource_id: home.network.id, step: "main" },
    },
    errors: [{ at: new Date().toISOString(), code: "DV_DRIVER", message: "refused" }],
    deliveryCount: 1,
    reason: "refused",
  });
  const [row] = await api.t.admin.query<{ id: string }>(
    "SELECT id FROM runtime.dead_letters WHERE message_id = $1",
    [messageId],
  );
  return row?.id ?? "";
}

beforeAll(async () => {
  // As the database's owner, as a deployment connects: the operators' /database routes read the
  // migrations and run pg_dump.
  api = await startApi({}, { owner: true });
  operator = await api.token("operator");
  const served = (
    await api.call(undefined, { method: "GET", url: "/api/v1/openapi.json" })
  ).json<ServedDocument>();
  operations = Object.entries(served.paths).flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([m]) => ["get", "post", "put", "patch", "delete"].includes(m))
      .map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        enums: Object.fromEntries(
          (op.parameters ?? [])
            .filter((p) => p.in === "path" && p.schema?.enum?.[0] !== undefined)
            .map((p) => [p.name, p.schema?.enum?.[0] ?? ""]),
        ),
      })),
  );
  home = await seedEveryKind(api, await seedTenant(api, "homeco"));
  away = await seedEveryKind(api, await seedTenant(api, "awayco"));

  // The other project of the caller's tenant, with an environment, a resource of every kind and
  // a task.
  const base = `/api/v1/tenants/${home.tenant.id}`;
  const post = async (url: string, payload: Record<string, unknown>) => {
    const r = await api.call(home.adminToken, { method: "POST", url, payload });
    if (r.statusCode >= 300) throw new Error(`seeding ${url}: ${r.statusCode} ${r.body}`);
    return r.json<{ id?: string; metadata?: { id: string }; resource?: { id: string } }>();
  };
  const project = await post(`${base}/projects`, { name: "zeta-side" });
  const projectId = project.metadata?.id ?? "";
  const env = await post(`${base}/projects/${projectId}/environments`, {
    name: "zeta-env",
    datacenter: "dc1",
  });
  const envUrl = `${base}/projects/${projectId}/environments/${env.metadata?.id ?? ""}`;
  const resources: Partial<Record<ResourceKindPath, { id: string; name: string }>> = {};
  let taskId = "";
  for (const kind of RESOURCE_KINDS) {
    const name = `zeta-${kind}`;
    const task = await post(`${envUrl}/${kind}`, { name, spec: VALID_SPECS[kind] });
    resources[kind] = { id: task.resource?.id ?? "", name };
    taskId ||= task.id ?? "";
  }
  zeta = {
    project: { id: projectId, name: "zeta-side" },
    environment: { id: env.metadata?.id ?? "", name: "zeta-env" },
    network: resources.networks ?? { id: "", name: "" },
    task: { id: taskId },
    resources: resources as Record<ResourceKindPath, { id: string; name: string }>,
  };

  // An ended task of home-web.
  const ended = await post(
    `/api/v1/tenants/${home.tenant.id}/projects/${home.project.id}/environments/${home.environment.id}/networks`,
    { name: "ended-net", spec: {} },
  );
  endedTask = ended.id ?? "";
  await post(`/api/v1/tenants/${home.tenant.id}/tasks/${endedTask}/cancel`, {});

  const outbox = new OutboxStore(api.t.db);
  const service = new DeadLetterService({
    db: api.t.db,
    deadLetters: new DeadLetterStore(api.t.db),
    inbox: new InboxStore(api.t.db),
    outbox,
    audit: new AuditStore(api.t.db),
    tasks: new TaskService({ tasks: api.facade.tasks, outbox, newId, now: () => new Date() }),
    newId,
    now: () => new Date(),
  });
  deadLetters = { replay: await deadLetter(service), discard: await deadLetter(service) };
  const backup = await api.call(operator, { method: "POST", url: "/api/v1/database/backups" });
  expect(backup.statusCode, backup.body.slice(0, 300)).toBe(200);
  backupId = String(backup.headers["dv-backup-id"]);
}, 120_000);
afterAll(async () => api?.close());

/** What a request is aimed at: the objects named in its path. */
interface Target {
  readonly tenant: { id: string };
  readonly project: { id: string };
  readonly environment: { id: string };
  readonly resources: Readonly<Record<ResourceKindPath, { id: string }>>;
  readonly task: string;
}

function urlOf(op: Operation, target: Target): string {
  const values: Record<string, string> = {
    tenant: target.tenant.id,
    project: target.project.id,
    environment: target.environment.id,
    name: target.resources[kindOf(op.path) ?? "networks"].id,
    task: target.task,
    deadLetter: lastSegment(op.path) === "discard" ? deadLetters.discard : deadLetters.replay,
    backup: backupId,
    ...CATALOG_VALUES,
    ...op.enums,
  };
  return `/api/v1${op.path.replace(/\{(\w+)\}/g, (_m, key: string) => values[key] ?? `no-${key}`)}`;
}

let created = 0;

/** Sends `op` at `target` as `token`, with a body its schema accepts and the current ETag. */
async function send(op: Operation, target: Target, token: string) {
  const url = urlOf(op, target);
  let body: Record<string, unknown> | undefined = validBody(
    { ...op, bodyFields: [], specFields: [], operatorOnly: false, shared: false },
    `sweep-${++created}`,
  );
  // The one PUT, a quota's limits: none of its own (back to the platform's default).
  if (op.method === "PUT") body = { limits: {} };
  const headers: Record<string, string> = {};
  if (op.method === "PATCH" || op.method === "DELETE") {
    // The current version, so a write that is allowed goes through rather than meet a 412.
    const current = await api.call(operator, { method: "GET", url });
    headers["if-match"] = typeof current.headers.etag === "string" ? current.headers.etag : '"1"';
  }
  const response = await api.call(token, {
    method: op.method,
    url,
    headers,
    ...(body === undefined ? {} : { payload: body }),
  });
  return { url, sent: `${url} ${JSON.stringify(body ?? "")}`, response };
}

/** Everything of `s` a response may carry only if the request named it. */
function secretsOf(s: Omit<SeededWithKinds, "adminToken" | "tenant">, tenant?: SeededWithKinds) {
  return [
    ...(tenant ? [tenant.tenant.id, tenant.tenant.name] : []),
    s.project.id,
    s.project.name,
    s.environment.id,
    s.environment.name,
    s.task.id,
    ...Object.values(s.resources).flatMap((r) => [r.id, r.name]),
  ];
}

describe("who may do what (docs/api.md), every operation × role × scope", () => {
  it("answers as the table says, inside and outside the caller's scope, and leaks nothing", async () => {
    const table = readTable();
    const served = operations.map((o) => `${o.method} ${o.path}`);
    // The table and the document list the same operations.
    expect(
      served.filter((o) => !table.has(o)),
      "operations without a row",
    ).toEqual([]);
    expect(
      [...table.keys()].filter((o) => !served.includes(o)),
      "rows of no operation",
    ).toEqual([]);
    expect(operations.length).toBeGreaterThanOrEqual(40);

    const tokens: Record<Column, string> = {
      operator,
      "tenant-admin": await api.token("tenant-admin", "homeco", undefined, "hanna"),
      "tenant-reader": await api.token("tenant-reader", "homeco", undefined, "henrik"),
      "tenant-admin, project-scoped": await api.token(
        "tenant-admin",
        "homeco",
        "homeco-web",
        "pia",
      ),
      "tenant-reader, project-scoped": await api.token(
        "tenant-reader",
        "homeco",
        "homeco-web",
        "per",
      ),
    };
    const inScope: Target = {
      tenant: home.tenant,
      project: home.project,
      environment: home.environment,
      resources: home.resources,
      task: endedTask,
    };
    const otherTenant: Target = {
      tenant: away.tenant,
      project: away.project,
      environment: away.environment,
      resources: away.resources,
      task: away.task.id,
    };
    const otherProject: Target = {
      tenant: home.tenant,
      project: zeta.project,
      environment: zeta.environment,
      resources: zeta.resources,
      task: zeta.task.id,
    };
    const awaySecrets = secretsOf(away, away);
    const zetaSecrets = secretsOf(zeta);

    const failures: string[] = [];
    let requests = 0;
    for (const op of operations) {
      const row = table.get(`${op.method} ${op.path}`);
      if (!row) continue;
      const operatorOnly = COLUMNS.slice(1).every((c) => row[c] === 403);
      const isWrite = op.method !== "GET";
      const underTenant = op.path.includes("{tenant}");
      const underProject = op.path.includes("{project}") || op.path.includes("{task}");
      for (const column of COLUMNS) {
        const token = tokens[column];
        const scoped = column.endsWith("project-scoped");
        const hidden =
          column === "operator" ? [] : [...awaySecrets, ...(scoped ? zetaSecrets : [])];
        const check = (
          what: string,
          sent: string,
          response: { statusCode: number; body: string },
          allowed: number[],
        ) => {
          requests++;
          const where = `${column} ${op.method} ${op.path} (${what})`;
          if (!allowed.includes(response.statusCode)) {
            failures.push(
              `${where} -> ${response.statusCode}, the table says ${allowed.join(" or ")}: ${response.body.slice(0, 200)}`,
            );
          }
          const leaked = hidden.filter((s) => response.body.includes(s) && !sent.includes(s));
          if (leaked.length > 0) failures.push(`${where} leaked ${leaked.join(", ")}`);
        };

        // Within its scope: what the table says; a write that is allowed may instead meet the
        // state of what it changes (409 in use / already ended, 412 a version moved meanwhile).
        const expected = row[column];
        const allowed = isWrite && expected < 300 ? [expected, 409, 412] : [expected];
        const own = await send(op, inScope, token);
        check("in scope", own.sent, own.response, allowed);

        // Outside it: 404 as if it did not exist; 403 where only operators may act at all.
        if (column === "operator" || !underTenant) continue;
        const outside = operatorOnly ? [403] : [404];
        const foreign = await send(op, otherTenant, token);
        check("another tenant's", foreign.sent, foreign.response, outside);
        if (scoped && underProject) {
          const sibling = await send(op, otherProject, token);
          check("another project's", sibling.sent, sibling.response, outside);
        }
      }
    }
    expect(requests).toBeGreaterThan(300);
    expect(failures).toEqual([]);
  }, 180_000);
});
