import type { z } from "zod";
import type { Principal } from "../auth/index.js";
import type { AuditRecord as AuditRow } from "../contexts/audit/index.js";
import type { Resource as ResourceRow, ServerCount } from "../contexts/inventory/index.js";
import type { PlatformObject as PlatformObjectRow } from "../contexts/platform/index.js";
import type { DeadLetter as DeadLetterRecord } from "../contexts/runtime/index.js";
import type { Task as TaskRow, TaskEvent as TaskEventRow } from "../contexts/task/index.js";
import type {
  Environment as EnvironmentRow,
  Project as ProjectRow,
  Tenant as TenantRow,
} from "../contexts/tenancy/index.js";
import type { CatalogEntry } from "./facade.js";
import type {
  AuditRecord,
  CATALOG_SCHEMAS,
  CatalogPath,
  Condition,
  DeadLetter,
  Environment,
  KindPath,
  PlatformObject,
  Project,
  RESOURCE_SCHEMAS,
  Task,
  TaskEvent,
  Tenant,
} from "./schemas.js";
import { KINDS } from "./schemas.js";

/** The path segment of each resource kind. */
export const KIND_PATH: Readonly<Record<string, KindPath>> = {
  network: "networks",
  server: "servers",
  cluster: "clusters",
  bucket: "buckets",
};

const iso = (d: Date): string => d.toISOString();

/** Whom a representation is for: operators see the platform's workings, tenants their outcome. */
export type Audience = "operator" | "tenant";

/** The audience of a caller. */
export const audienceOf = (principal: Principal | undefined): Audience =>
  principal?.role === "operator" ? "operator" : "tenant";

/** A step of a resource's workflow as the controllers record it (controllers/common/status.ts). */
interface StepRecord {
  readonly state?: unknown;
  readonly generation?: unknown;
  readonly dispatchedAt?: unknown;
  readonly error?: unknown;
}

/**
 * A resource's status as a tenant sees it: each step of its workflow by name with its state, the
 * generation it works towards, when it started and, when it failed, why — not the command ids,
 * domain services, actions, attempts and raw results the controllers keep, nor the platform's
 * own drift checks (`observe:*` steps, `observations`). Operators see the status as stored.
 */
function tenantStatus(status: Record<string, unknown>): Record<string, unknown> {
  const { steps, observations: _observations, ...rest } = status;
  if (!steps || typeof steps !== "object") return rest;
  const shown = Object.entries(steps as Record<string, StepRecord>)
    .filter(([name]) => !name.startsWith("observe:"))
    .map(([name, step]) => [
      name,
      {
        state: typeof step.state === "string" ? step.state : "pending",
        ...(typeof step.generation === "number" ? { generation: step.generation } : {}),
        ...(typeof step.dispatchedAt === "string" ? { startedAt: step.dispatchedAt } : {}),
        ...(typeof step.error === "string" ? { message: step.error } : {}),
      },
    ]);
  return { ...rest, steps: Object.fromEntries(shown) };
}

export function tenantOut(row: TenantRow): z.input<typeof Tenant> {
  return {
    kind: "Tenant",
    metadata: {
      id: row.id,
      name: row.name,
      labels: row.labels,
      version: row.version,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    },
    spec: { displayName: row.displayName },
  };
}

export function projectOut(row: ProjectRow): z.input<typeof Project> {
  return {
    kind: "Project",
    metadata: {
      id: row.id,
      name: row.name,
      tenantId: row.tenantId,
      labels: row.labels,
      version: row.version,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    },
    spec: { displayName: row.displayName },
  };
}

export function environmentOut(row: EnvironmentRow): z.input<typeof Environment> {
  return {
    kind: "Environment",
    metadata: {
      id: row.id,
      name: row.name,
      tenantId: row.tenantId,
      projectId: row.projectId,
      labels: row.labels,
      version: row.version,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    },
    spec: { datacenter: row.datacenterId },
  };
}

/** A resource as `audience` sees it (see {@link tenantStatus}). */
export function resourceOut(
  row: ResourceRow,
  audience: Audience,
): z.input<(typeof RESOURCE_SCHEMAS)[KindPath]["resource"]> {
  const path = KIND_PATH[row.kind] ?? "networks";
  const stored = row.status;
  const status = (audience === "operator" ? stored : tenantStatus(stored)) as {
    observedGeneration?: number;
    conditions?: unknown[];
  };
  return {
    kind: KINDS[path].title,
    metadata: {
      id: row.id,
      name: row.name,
      tenantId: row.tenantId,
      projectId: row.projectId,
      environmentId: row.environmentId,
      datacenter: row.datacenterId,
      labels: row.labels,
      version: row.version,
      generation: row.generation,
      deletionRequestedAt: row.deletionRequestedAt ? iso(row.deletionRequestedAt) : null,
      createdAt: iso(row.createdAt),
      updatedAt: iso(row.updatedAt),
    },
    spec: row.spec,
    status: {
      ...status,
      observedGeneration: row.observedGeneration,
      conditions: (status.conditions ?? []) as never[],
    },
  };
}

/** How many resources' JSON {@link resourceJson} keeps, per audience together. */
const RESOURCE_JSON_MAX = 5_000;

/** The JSON of a resource as last written, and the version of the row it was written from. */
interface WrittenResource {
  readonly version: number;
  readonly updatedAt: number;
  readonly generation: number;
  readonly observedGeneration: number;
  readonly json: string;
}

const resourceJsons = new Map<string, WrittenResource>();

/**
 * `JSON.stringify(resourceOut(row, audience))`, written once per version of the row: every
 * write of a resource raises its `version` and sets `updated_at` (the strong ETag of a `GET` is
 * that version, so a representation is one per version by contract anyway). Writing a
 * representation out cost more than the rest of answering a `GET` of one; a repeated read of an
 * unchanged resource takes the JSON written for it before. The row is still read every time.
 */
export function resourceJson(row: ResourceRow, audience: Audience): string {
  const key = `${audience}:${row.id}`;
  const updatedAt = row.updatedAt.getTime();
  const written = resourceJsons.get(key);
  if (
    written !== undefined &&
    written.version === row.version &&
    written.updatedAt === updatedAt &&
    written.generation === row.generation &&
    written.observedGeneration === row.observedGeneration
  ) {
    return written.json;
  }
  const json = JSON.stringify(resourceOut(row, audience));
  resourceJsons.delete(key);
  resourceJsons.set(key, {
    version: row.version,
    updatedAt,
    generation: row.generation,
    observedGeneration: row.observedGeneration,
    json,
  });
  // The oldest written goes first.
  if (resourceJsons.size > RESOURCE_JSON_MAX)
    resourceJsons.delete(resourceJsons.keys().next().value as string);
  return json;
}

/** The API path of a resource. */
export function resourceHref(row: {
  tenantId: string;
  projectId: string;
  environmentId: string;
  kind: string;
  id: string;
}): string {
  const path = KIND_PATH[row.kind] ?? row.kind;
  return `/api/v1/tenants/${row.tenantId}/projects/${row.projectId}/environments/${row.environmentId}/${path}/${row.id}`;
}

export function taskHref(row: { tenantId: string | null; id: string }): string {
  return `/api/v1/tenants/${row.tenantId ?? "-"}/tasks/${row.id}`;
}

export function taskEventOut(row: TaskEventRow): z.input<typeof TaskEvent> {
  return {
    seq: row.seq,
    verb: row.verb,
    at: iso(row.at),
    actor: row.actor,
    message: row.message,
    percent: row.percent,
  };
}

export function taskOut(row: TaskRow, history?: TaskEventRow[]): z.input<typeof Task> {
  const href =
    row.tenantId && row.projectId && row.environmentId
      ? resourceHref({
          tenantId: row.tenantId,
          projectId: row.projectId,
          environmentId: row.environmentId,
          kind: row.resourceKind,
          id: row.resourceId,
        })
      : "";
  return {
    kind: "Task",
    id: row.id,
    operation: row.operation,
    state: row.state,
    progress: { percent: row.progressPercent, message: row.progressMessage },
    reason: row.reason,
    resource: {
      kind: row.resourceKind,
      id: row.resourceId,
      generation: row.resourceGeneration,
      href,
    },
    actor: row.actor,
    correlationId: row.correlationId,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    finishedAt: row.finishedAt ? iso(row.finishedAt) : null,
    ...(history ? { history: history.map(taskEventOut) } : {}),
  };
}

export function auditOut(row: AuditRow): z.input<typeof AuditRecord> {
  return {
    id: String(row.id),
    at: iso(row.at),
    actor: row.actor,
    tenantId: row.tenantId,
    projectId: row.projectId,
    datacenter: row.datacenterId,
    action: row.action,
    resource: { kind: row.resourceKind, id: row.resourceId },
    before: row.before,
    after: row.after,
    correlationId: row.correlationId,
  };
}

/** A dead letter as the API shows it. */
export function deadLetterOut(row: DeadLetterRecord): z.input<typeof DeadLetter> {
  return {
    kind: "DeadLetter",
    id: row.id,
    state: row.state as z.input<typeof DeadLetter>["state"],
    service: row.service,
    subject: row.subject,
    type: row.type,
    messageId: row.messageId,
    reason: row.reason,
    deliveryCount: row.deliveryCount,
    errors: row.errors,
    envelope: row.envelope,
    correlationId: row.correlationId,
    causationId: row.causationId,
    taskId: row.taskId,
    createdAt: iso(row.createdAt),
    resolvedAt: row.resolvedAt ? iso(row.resolvedAt) : null,
    resolvedBy: row.resolvedBy,
    replayMessageId: row.replayMessageId,
  };
}

// ------------------------------------------------------------------ catalog

/** Reasons whose messages name what uses a platform object: other tenants' resources. */
const NAMES_USERS = new Set(["InUse"]);

const CONDITION_TYPES = new Set(["Ready", "Reconciling", "Stalled"]);
const CONDITION_STATUSES = new Set(["True", "False", "Unknown"]);
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

type ConditionOut = z.input<typeof Condition>;

/**
 * The conditions of a platform object's recorded status, as `audience` sees them: kstatus'
 * three types, `Ready` always (`Unknown` until the platform controller reports), and for
 * tenants no message that names what uses the object (a deletion held by another tenant's
 * network names it).
 */
export function platformConditions(object: PlatformObjectRow, audience: Audience): ConditionOut[] {
  const raw = Array.isArray(object.status.conditions)
    ? (object.status.conditions as Record<string, unknown>[])
    : [];
  const text = (v: unknown): string => (typeof v === "string" ? v : "");
  const conditions: ConditionOut[] = raw
    .filter(
      (c) =>
        typeof c === "object" &&
        c !== null &&
        CONDITION_TYPES.has(text(c.type)) &&
        CONDITION_STATUSES.has(text(c.status)),
    )
    .map((c) => ({
      type: c.type as ConditionOut["type"],
      status: c.status as ConditionOut["status"],
      reason: text(c.reason),
      message:
        audience === "tenant" && NAMES_USERS.has(text(c.reason))
          ? "it is in use; its deletion waits until nothing uses it"
          : text(c.message),
      lastTransitionTime: ISO_UTC.test(text(c.lastTransitionTime))
        ? text(c.lastTransitionTime)
        : iso(object.updatedAt),
      observedGeneration:
        typeof c.observedGeneration === "number" && Number.isInteger(c.observedGeneration)
          ? c.observedGeneration
          : object.observedGeneration,
    }));
  if (!conditions.some((c) => c.type === "Ready")) {
    conditions.unshift({
      type: "Ready",
      status: "Unknown",
      reason: "NotObserved",
      message: "the platform controller has not reported on it yet",
      lastTransitionTime: iso(object.updatedAt),
      observedGeneration: object.observedGeneration,
    });
  }
  return conditions;
}

const catalogMetadata = (o: PlatformObjectRow) => ({
  name: o.name,
  generation: o.generation,
  createdAt: iso(o.createdAt),
  updatedAt: iso(o.updatedAt),
});

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const int = (v: unknown): number => (typeof v === "number" && Number.isInteger(v) ? v : 0);
const GIB = 1024 ** 3;

/** Servers by a key (a machine class, a datacenter), summed, in the order first met. */
function countsBy(
  rows: readonly ServerCount[],
  key: (r: ServerCount) => string,
): { key: string; total: number; free: number }[] {
  const out = new Map<string, { key: string; total: number; free: number }>();
  for (const r of rows) {
    const k = key(r);
    const c = out.get(k) ?? { key: k, total: 0, free: 0 };
    out.set(k, { key: k, total: c.total + r.total, free: c.free + r.free });
  }
  return [...out.values()];
}

/** A catalog entry as the API shows it to `audience`, by its kind. */
export function catalogOut(
  entry: CatalogEntry,
  audience: Audience,
): z.input<(typeof CATALOG_SCHEMAS)[CatalogPath]> {
  const o = entry.object;
  const spec = o.spec;
  const common = {
    metadata: catalogMetadata(o),
    status: {
      observedGeneration: o.observedGeneration,
      conditions: platformConditions(o, audience),
    },
  };
  const servers = entry.servers ?? [];
  const sum = { total: 0, free: 0 };
  for (const s of servers) {
    sum.total += s.total;
    sum.free += s.free;
  }
  switch (o.kind) {
    case "Datacenter": {
      const offer = entry.offer;
      const storage = offer?.objectStorageBytes ?? { total: 0, free: 0 };
      return {
        kind: "Datacenter",
        metadata: common.metadata,
        spec: {
          displayName: str(spec.displayName),
          site: str(spec.site),
          failureDomain: str(spec.failureDomain),
        },
        status: {
          ...common.status,
          networkPools: (offer?.networkPools ?? []).map((p) => p.name),
          defaultNetworkPool: offer?.networkPools.find((p) => p.isDefault)?.name ?? null,
          machineClasses: [...(offer?.machineClasses ?? [])],
          objectStorageGiB: {
            total: Math.floor(storage.total / GIB),
            free: Math.max(0, Math.floor(storage.free / GIB)),
          },
        },
      };
    }
    case "MachineClass":
      return {
        kind: "MachineClass",
        metadata: common.metadata,
        spec: {
          description: str(spec.description),
          cpuCores: int(spec.cpuCores),
          memoryMiB: int(spec.memoryMiB),
        },
        status: {
          ...common.status,
          servers: sum,
          datacenters: countsBy(servers, (s) => s.datacenter).map((c) => ({
            datacenter: c.key,
            total: c.total,
            free: c.free,
          })),
        },
      };
    case "NetworkPool": {
      const free = entry.network;
      const ranges = Array.isArray(spec.vlanRanges)
        ? (spec.vlanRanges as Record<string, unknown>[])
        : [];
      return {
        kind: "NetworkPool",
        metadata: common.metadata,
        spec: {
          datacenter: str(spec.datacenter),
          default: spec.default === true,
          vlanRanges: ranges.map((r) => ({ start: int(r.start), end: int(r.end) })),
          prefixes: Array.isArray(spec.prefixes) ? spec.prefixes.map(str) : [],
        },
        status: {
          ...common.status,
          vlans: free?.vlans ?? { total: 0, free: 0 },
          addresses: free?.addresses ?? { total: 0, free: 0 },
          largestFreePrefixLength: free?.largestFreePrefixLength ?? null,
        },
      };
    }
    default:
      return {
        kind: "ServerPool",
        metadata: common.metadata,
        spec: { datacenter: str(spec.datacenter) },
        status: {
          ...common.status,
          servers: sum,
          machineClasses: countsBy(servers, (s) => s.machineClass).map((c) => ({
            machineClass: c.key,
            total: c.total,
            free: c.free,
          })),
        },
      };
  }
}

/** A platform object as recorded, for operators. */
export function platformObjectOut(o: PlatformObjectRow): z.input<typeof PlatformObject> {
  return {
    apiVersion: "platform.dataverket.io/v1alpha1",
    kind: o.kind as z.input<typeof PlatformObject>["kind"],
    metadata: { ...catalogMetadata(o), version: o.version },
    spec: o.spec,
    status: o.status,
  };
}
