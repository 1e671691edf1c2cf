import { z } from "zod";
import { line, lines, Name, TENANT_KINDS, type TenantKind } from "../contexts/inventory/index.js";
import { TASK_STATES, TASK_VERBS } from "../kernel/index.js";

// Names and text as the tenant kinds' specs take them (kinds.ts), for every schema here too.
export { line, lines, Name };

/**
 * The public representations of /api/v1, as zod schemas: one source for request validation,
 * response serialisation and the OpenAPI document. Request bodies are strict (an unknown field is
 * a 400, never silently ignored).
 */

export const Id = z
  .uuid()
  .meta({ description: "A UUID (v7).", example: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f" });

/** What a {@link Ref} is: 1 to 63 of these characters. */
export const REF_PATTERN = /^[a-z0-9][-a-z0-9]*$/;
export const REF_MAX_LENGTH = 63;

/** A path segment that is either an id or a name. */
export const Ref = z
  .string()
  .min(1)
  .max(REF_MAX_LENGTH)
  .regex(REF_PATTERN, { error: "must be an id or a name" })
  .meta({ description: "The id or the name of the object.", example: "acme" });

const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;

const MAX_LABELS = 64;

export const Labels = z
  .record(
    z
      .string()
      .max(253)
      .regex(LABEL_KEY, { error: "label keys are [prefix/]name, like Kubernetes labels" }),
    z.string().regex(LABEL_VALUE, {
      error: "label values are at most 63 letters, digits, '-', '_' or '.'",
    }),
  )
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
    error: `at most ${MAX_LABELS} labels`,
  })
  .meta({
    description: `Labels for selection, as in Kubernetes; at most ${MAX_LABELS}.`,
    example: { team: "payments" },
    // The refinement above, for the document.
    maxProperties: MAX_LABELS,
  });

const Timestamp = z.iso.datetime().meta({ description: "RFC 3339, UTC." });

export const Metadata = z.object({
  id: Id,
  name: Name,
  labels: Labels,
  /** The optimistic-concurrency token; also the ETag. */
  version: z.number().int(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

// ------------------------------------------------------------------ tenancy

export const Tenant = z
  .object({
    kind: z.literal("Tenant"),
    metadata: Metadata,
    spec: z.object({ displayName: z.string() }),
  })
  .meta({ id: "Tenant" });

export const TenantCreate = z
  .strictObject({
    name: Name,
    displayName: line(200).optional(),
    labels: Labels.optional(),
  })
  .meta({ id: "TenantCreate" });

export const TenancyPatch = z
  .strictObject({ displayName: line(200).optional(), labels: Labels.optional() })
  .refine((p) => p.displayName !== undefined || p.labels !== undefined, {
    error: "name at least one field to change",
  })
  // The refinement above, for the document.
  .meta({ id: "TenancyPatch", minProperties: 1 });

export const Project = z
  .object({
    kind: z.literal("Project"),
    metadata: Metadata.extend({ tenantId: Id }),
    spec: z.object({ displayName: z.string() }),
  })
  .meta({ id: "Project" });

export const ProjectCreate = TenantCreate.meta({ id: "ProjectCreate" });

export const Environment = z
  .object({
    kind: z.literal("Environment"),
    metadata: Metadata.extend({ tenantId: Id, projectId: Id }),
    spec: z.object({ datacenter: Name.meta({ example: "dc1" }) }),
  })
  .meta({ id: "Environment" });

export const EnvironmentCreate = z
  .strictObject({
    name: Name,
    datacenter: Name.meta({
      description: "The Datacenter its resources are placed in.",
      example: "dc1",
    }),
    labels: Labels.optional(),
  })
  .meta({ id: "EnvironmentCreate" });

export const EnvironmentPatch = z.strictObject({ labels: Labels }).meta({ id: "EnvironmentPatch" });

// ------------------------------------------------------------------ infrastructure resources

/**
 * A kind's spec schema (the inventory's, kinds.ts), named for the document: `NetworkSpec`, …
 * (named here rather than there so the document lists its schemas in the order they are met).
 */
const specOf = <K extends TenantKind>(kind: K) =>
  TENANT_KINDS[kind].spec.meta({
    id: `${TENANT_KINDS[kind].title}Spec`,
  });

/** The four kinds, by their path segment. */
export const KINDS = {
  networks: { kind: "network", ...TENANT_KINDS.network, spec: specOf("network") },
  servers: { kind: "server", ...TENANT_KINDS.server, spec: specOf("server") },
  clusters: { kind: "cluster", ...TENANT_KINDS.cluster, spec: specOf("cluster") },
  buckets: { kind: "bucket", ...TENANT_KINDS.bucket, spec: specOf("bucket") },
} as const;
export type KindPath = keyof typeof KINDS;

export const Condition = z
  .object({
    type: z.enum(["Ready", "Reconciling", "Stalled"]),
    status: z.enum(["True", "False", "Unknown"]),
    reason: z.string(),
    message: z.string(),
    lastTransitionTime: Timestamp,
    observedGeneration: z.number().int(),
  })
  .meta({ id: "Condition" });

export const ResourceStatus = z
  .looseObject({
    observedGeneration: z.number().int(),
    conditions: z.array(Condition),
    steps: z
      .record(
        z.string(),
        z.looseObject({
          state: z.string().meta({ description: "`pending`, `done`, `failed` or `stale`." }),
          generation: z.number().int().optional(),
          startedAt: Timestamp.optional(),
          message: z.string().optional().meta({ description: "Why it failed." }),
        }),
      )
      .optional()
      .meta({
        description:
          "The steps of the platform's work on it, by name: state, the generation it works towards, when it started, and why it failed. Operators also see each step's command, domain service, action, attempt and result.",
      }),
  })
  .meta({
    id: "ResourceStatus",
    description:
      "What the platform observed. Kinds add their own fields (a network's vlanId and cidr, …).",
  });

const ResourceMetadata = Metadata.extend({
  tenantId: Id,
  projectId: Id,
  environmentId: Id,
  datacenter: z.string(),
  generation: z.number().int().meta({ description: "Moves when the spec changes." }),
  deletionRequestedAt: Timestamp.nullable(),
});

const resourceSchema = (path: KindPath) =>
  z
    .object({
      kind: z.literal(KINDS[path].title),
      metadata: ResourceMetadata,
      spec: KINDS[path].spec,
      status: ResourceStatus,
    })
    .meta({ id: KINDS[path].title });

const resourceCreateSchema = (path: KindPath) =>
  z
    .strictObject({ name: Name, labels: Labels.optional(), spec: KINDS[path].spec })
    .meta({ id: `${KINDS[path].title}Create` });

const resourcePatchSchema = (path: KindPath) =>
  z
    .strictObject({
      labels: Labels.optional(),
      spec: KINDS[path].spec.optional().meta({ description: "Replaces the whole spec." }),
    })
    .refine((p) => p.labels !== undefined || p.spec !== undefined, {
      error: "name at least one field to change",
    })
    // The refinement above, for the document.
    .meta({ id: `${KINDS[path].title}Patch`, minProperties: 1 });

/** Representation, create body and patch body of each kind, built once (their ids are global). */
export const RESOURCE_SCHEMAS = {
  networks: {
    resource: resourceSchema("networks"),
    create: resourceCreateSchema("networks"),
    patch: resourcePatchSchema("networks"),
  },
  servers: {
    resource: resourceSchema("servers"),
    create: resourceCreateSchema("servers"),
    patch: resourcePatchSchema("servers"),
  },
  clusters: {
    resource: resourceSchema("clusters"),
    create: resourceCreateSchema("clusters"),
    patch: resourcePatchSchema("clusters"),
  },
  buckets: {
    resource: resourceSchema("buckets"),
    create: resourceCreateSchema("buckets"),
    patch: resourcePatchSchema("buckets"),
  },
} as const;

// ------------------------------------------------------------------ tasks

export const TaskEvent = z
  .object({
    seq: z.number().int(),
    verb: z.enum(TASK_VERBS),
    at: Timestamp,
    actor: z.string(),
    message: z.string(),
    percent: z.number().int().nullable(),
  })
  .meta({ id: "TaskEvent" });

export const Task = z
  .object({
    kind: z.literal("Task"),
    id: Id,
    operation: z.string().meta({ example: "network.create" }),
    state: z.enum(TASK_STATES),
    progress: z.object({ percent: z.number().int().min(0).max(100), message: z.string() }),
    reason: z.string().meta({ description: "Why it failed or was cancelled." }),
    resource: z.object({
      kind: z.string(),
      id: Id,
      generation: z.number().int(),
      href: z.string(),
    }),
    actor: z.string(),
    correlationId: z.string(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    finishedAt: Timestamp.nullable(),
    history: z.array(TaskEvent).optional(),
  })
  .meta({ id: "Task" });

/** One Server-Sent Event whose `data` is JSON described by `data` (a JSON Schema). */
const sseEvent = (event: string, data: Record<string, unknown>) =>
  z.object({
    event: z.literal(event),
    data: z.string().meta({ contentMediaType: "application/json", contentSchema: data }),
  });

/**
 * An event of a task's stream (`text/event-stream`): `task` (the task, first and after every
 * change), `history` (each history event once, in order), then `end` once it ended — or `error`
 * when the stream failed.
 */
export const TaskStreamEvent = z
  .discriminatedUnion("event", [
    sseEvent("task", { $ref: "#/components/schemas/Task" }),
    sseEvent("history", { $ref: "#/components/schemas/TaskEvent" }),
    sseEvent("end", {
      type: "object",
      properties: { state: { type: "string", enum: [...TASK_STATES] } },
      required: ["state"],
      additionalProperties: false,
    }),
    sseEvent("error", {
      type: "object",
      properties: { detail: { type: "string" } },
      required: ["detail"],
      additionalProperties: false,
    }),
  ])
  .meta({ id: "TaskStreamEvent" });

// ------------------------------------------------------------------ audit

export const AuditRecord = z
  .object({
    id: z.string(),
    at: Timestamp,
    actor: z.string(),
    tenantId: Id.nullable(),
    projectId: Id.nullable().meta({
      description:
        "The project it is about; null for what belongs to no project (the tenant itself, its quotas, the platform).",
    }),
    datacenter: z.string(),
    action: z.string(),
    resource: z.object({ kind: z.string(), id: z.string() }),
    before: z.record(z.string(), z.unknown()).nullable(),
    after: z.record(z.string(), z.unknown()).nullable(),
    correlationId: z.string(),
  })
  .meta({ id: "AuditRecord" });

// ------------------------------------------------------------------ dead letters

export const DEAD_LETTER_STATE_VALUES = ["open", "replayed", "discarded"] as const;

export const DeadLetter = z
  .object({
    kind: z.literal("DeadLetter"),
    id: Id,
    state: z.enum(DEAD_LETTER_STATE_VALUES).meta({
      description: "`open` until an operator replays or discards it; nothing replays by itself.",
    }),
    service: z.string().meta({ example: "nett" }),
    subject: z.string().meta({ example: "dv.nett.cmd.apply" }),
    type: z.string().meta({ example: "nett.network.apply" }),
    messageId: z.string().meta({ description: "The id of the message that could not be handled." }),
    reason: z.string(),
    deliveryCount: z.number().int(),
    errors: z
      .array(z.object({ at: Timestamp, code: z.string(), message: z.string() }))
      .meta({ description: "Every failed attempt, oldest first." }),
    envelope: z
      .record(z.string(), z.unknown())
      .meta({ description: "The message as received (`{raw}` when it was not valid JSON)." }),
    correlationId: z.string(),
    causationId: z.string().nullable(),
    taskId: Id.nullable(),
    createdAt: Timestamp,
    resolvedAt: Timestamp.nullable(),
    resolvedBy: z.string().nullable(),
    replayMessageId: z.string().nullable().meta({
      description: "The id of the message a replay sent (its causation is this dead letter).",
    }),
  })
  .meta({ id: "DeadLetter" });

export const DeadLetterAction = z
  .strictObject({
    reason: lines(500, 1).meta({ description: "Why: recorded in the audit trail." }),
  })
  .meta({ id: "DeadLetterAction" });

// ------------------------------------------------------------------ common

export const listOf = <T extends z.ZodType>(item: T, id: string) =>
  z
    .object({
      items: z.array(item),
      nextCursor: z
        .string()
        .optional()
        .meta({ description: "Pass as `cursor` to get the next page; absent on the last." }),
    })
    .meta({ id });

export const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  cursor: z
    .string()
    .max(200)
    .regex(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/, { error: "must be a nextCursor this list gave out" })
    .optional()
    .meta({ description: "The `nextCursor` of the previous page of the same list, unchanged." }),
  labelSelector: line(2000)
    .optional()
    .meta({ description: "Kubernetes label selector: `tier=web,env!=prod,team`." }),
});

export const Problem = z
  .object({
    type: z.string().meta({ description: "A URI naming the kind of problem; stable." }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    instance: z.string().optional(),
    correlationId: z.string().optional(),
    errors: z
      .array(
        z.object({
          pointer: z
            .string()
            .meta({ description: "JSON pointer into the request: /body/spec/prefixLength" }),
          message: z.string(),
        }),
      )
      .optional(),
    quota: z
      .object({
        name: z.string().meta({ example: "addresses" }),
        scope: z
          .string()
          .meta({ description: "A datacenter, machine class, environment id, or `*`." }),
        limit: z.number().int(),
        used: z.number().int(),
        requested: z.number().int(),
      })
      .optional()
      .meta({
        description: "On `quota-exceeded`: the quota, its limit, what is used and what was asked.",
      }),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details." });

/**
 * `If-Match` of PATCH and DELETE: required, and one of our ETags. Its absence is answered 428
 * `precondition-required` before validation (see `requireIfMatch` in protocol.ts), anything
 * else that is not an ETag 400.
 */
export const IfMatchHeaders = z.object({
  "if-match": z
    .string()
    // Strong ETags only, as we give them out: not W/"3", not "03". ([0-9], not \d: the document's
    // pattern is read by other regex engines too, where \d matches any Unicode digit.)
    .regex(/^"[1-9][0-9]{0,8}"$/, { error: 'must be an ETag this API gave out, like "3"' })
    .meta({
      description:
        'The ETag you read (`"<version>"`): the change applies only to that version (412 when it is stale, 428 without it).',
      example: '"3"',
    }),
});

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, { error: "must be 1–255 visible ASCII characters" })
    .optional()
    .meta({
      description:
        "Repeat a POST safely: the same key and body return the first response for 24 hours.",
    }),
});

// ------------------------------------------------------------------ catalog

/**
 * The platform kinds a tenant may name in a request, by their path segment under /api/v1: what
 * each is called in the document, its path parameter, and a name the sample configuration
 * (config/platform) has, for the document's examples.
 */
export const CATALOG_KINDS = {
  datacenters: { kind: "Datacenter", param: "datacenter", example: "dc1" },
  "machine-classes": { kind: "MachineClass", param: "machineClass", example: "m1-large" },
  "network-pools": { kind: "NetworkPool", param: "networkPool", example: "dc1-tenant" },
  "server-pools": { kind: "ServerPool", param: "serverPool", example: "dc1-rack-a" },
} as const;
export type CatalogPath = keyof typeof CATALOG_KINDS;

/** The platform kinds of `/platform/{kind}` (operators), by their plural as kubectl names them. */
export const PLATFORM_KINDS = {
  datacenters: "Datacenter",
  machineclasses: "MachineClass",
  networkpools: "NetworkPool",
  serverpools: "ServerPool",
  platformpolicies: "PlatformPolicy",
  recoverypolicies: "RecoveryPolicy",
} as const;
export type PlatformKindPath = keyof typeof PLATFORM_KINDS;
export type PlatformKind = (typeof PLATFORM_KINDS)[PlatformKindPath];

const CatalogCount = z.object({
  total: z.number().int().min(0),
  free: z.number().int().min(0).meta({ description: "What no one holds: a tenant may get it." }),
});

const CatalogMetadata = z.object({
  name: z.string(),
  generation: z
    .number()
    .int()
    .meta({ description: "Moves when its spec changes in Git (or the directory)." }),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});

const catalogStatus = <T extends z.ZodRawShape>(fields: T) =>
  z.object({
    observedGeneration: z
      .number()
      .int()
      .meta({ description: "The generation the platform controller last acted on." }),
    conditions: z.array(Condition).meta({
      description:
        "`Ready` always (`Unknown` until the platform controller has reported on it); `Reconciling` and `Stalled` while true. A tenant may name it in a request when `Ready` is `True`.",
    }),
    ...fields,
  });

export const CatalogDatacenter = z
  .object({
    kind: z.literal("Datacenter"),
    metadata: CatalogMetadata,
    spec: z.object({ displayName: z.string(), site: z.string(), failureDomain: z.string() }),
    status: catalogStatus({
      networkPools: z.array(z.string()).meta({
        description: "The network pools of the datacenter, for a network's `spec.networkPool`.",
      }),
      defaultNetworkPool: z.string().nullable().meta({
        description: "The pool networks and clusters get when they name none; null: none.",
      }),
      machineClasses: z.array(z.string()).meta({
        description:
          "The machine classes its server pools have servers of, for a server's or cluster's `spec.machineClass`.",
      }),
      objectStorageGiB: CatalogCount.meta({
        description: "Object storage buckets may reserve (a bucket's `quotaGiB`).",
      }),
    }),
  })
  .meta({
    id: "Datacenter",
    description: "A datacenter an environment may be placed in (`datacenter`), and what it offers.",
  });

export const CatalogMachineClass = z
  .object({
    kind: z.literal("MachineClass"),
    metadata: CatalogMetadata,
    spec: z.object({
      description: z.string(),
      cpuCores: z.number().int(),
      memoryMiB: z.number().int(),
    }),
    status: catalogStatus({
      servers: CatalogCount.meta({ description: "Servers of this class, in every datacenter." }),
      datacenters: z
        .array(
          z.object({ datacenter: z.string(), total: z.number().int(), free: z.number().int() }),
        )
        .meta({ description: "Servers of this class by datacenter (only where there are some)." }),
    }),
  })
  .meta({
    id: "MachineClass",
    description:
      "A size a server or cluster may ask for (`spec.machineClass`), and how many are free.",
  });

export const CatalogNetworkPool = z
  .object({
    kind: z.literal("NetworkPool"),
    metadata: CatalogMetadata,
    spec: z.object({
      datacenter: z.string(),
      default: z.boolean().meta({ description: "Networks that name no pool use this one." }),
      vlanRanges: z.array(z.object({ start: z.number().int(), end: z.number().int() })),
      prefixes: z.array(z.string()),
    }),
    status: catalogStatus({
      vlans: CatalogCount.meta({ description: "VLAN ids: one per network and per cluster." }),
      addresses: CatalogCount.meta({
        description:
          "IPv4 addresses of its prefixes: a network of prefixLength n takes 2^(32 − n).",
      }),
      largestFreePrefixLength: z.number().int().nullable().meta({
        description:
          "The prefix length of its largest free block: a network of this prefixLength or longer fits; null when nothing is free.",
      }),
    }),
  })
  .meta({
    id: "NetworkPool",
    description:
      "VLANs and IPv4 prefixes of a datacenter that networks (`spec.networkPool`) and clusters are given.",
  });

export const CatalogServerPool = z
  .object({
    kind: z.literal("ServerPool"),
    metadata: CatalogMetadata,
    spec: z.object({ datacenter: z.string() }),
    status: catalogStatus({
      servers: CatalogCount,
      machineClasses: z
        .array(
          z.object({ machineClass: z.string(), total: z.number().int(), free: z.number().int() }),
        )
        .meta({ description: "Its servers by machine class." }),
    }),
  })
  .meta({
    id: "ServerPool",
    description: "Physical servers of a datacenter that servers and clusters are built on.",
  });

/** The catalog's representation of each kind, by path. */
export const CATALOG_SCHEMAS = {
  datacenters: CatalogDatacenter,
  "machine-classes": CatalogMachineClass,
  "network-pools": CatalogNetworkPool,
  "server-pools": CatalogServerPool,
} as const;

export const PlatformObject = z
  .object({
    apiVersion: z.literal("platform.dataverket.io/v1alpha1"),
    kind: z.enum(Object.values(PLATFORM_KINDS) as [PlatformKind, ...PlatformKind[]]),
    metadata: CatalogMetadata.extend({
      version: z.number().int().meta({ description: "Moves with every change of spec or status." }),
    }),
    spec: z.record(z.string(), z.unknown()).meta({ description: "The spec as applied." }),
    status: z
      .record(z.string(), z.unknown())
      .meta({ description: "The status as the platform controller recorded it." }),
  })
  .meta({
    id: "PlatformObject",
    description:
      "A platform object as applied from Git (or the configuration directory), with its full status (operators).",
  });

/** `limit` and `cursor` of a catalog list (platform objects have no labels). */
export const CatalogListQuery = z.strictObject({
  limit: ListQuery.shape.limit,
  cursor: ListQuery.shape.cursor,
});

/** A catalog list that may be narrowed to one datacenter. */
export const CatalogPoolQuery = z.strictObject({
  ...CatalogListQuery.shape,
  datacenter: Ref.optional().meta({
    description: "Only those of this datacenter (none when it has none).",
    example: "dc1",
  }),
});
