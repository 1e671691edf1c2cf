import { z } from "zod";
import { cidrProblem, cidrsOverlap } from "./cidr.js";

/**
 * The custom resources of the `platform.dataverket.io/v1alpha1` API: one zod schema per kind,
 * the single source of the CRD YAML (`npm run generate`), of validation when the same YAML is
 * read from a directory, and of the controllers' types. Cross-field rules carry a CEL twin so
 * the API server refuses bad objects at apply time.
 */

export const GROUP = "platform.dataverket.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
    error: "must be a DNS label (lower-case letters, digits, '-')",
  })
  .meta({ description: "A DNS label." });

/** A rule the API server checks with CEL (`x-kubernetes-validations`); zod checks the same. */
export interface CelRule {
  readonly rule: string;
  /** What `kubectl apply` prints after the field's path when the rule fails. */
  readonly message?: string;
  /** A CEL string expression for the message, when it should show the value. */
  readonly messageExpression?: string;
  readonly fieldPath?: string;
}

/** The CEL rules of a schema node, as zod `.meta()` puts them into the generated CRD. */
const cel = (...rules: readonly CelRule[]) => ({
  "x-kubernetes-validations": rules.map((r) => ({ ...r })),
});

const CIDR_MESSAGE =
  "must be a CIDR prefix such as 10.0.0.0/16 or fd00::/48: a valid IPv4 or IPv6 address and a length of at most 32 (IPv4) or 128 (IPv6)";

// The pattern keeps what reaches CEL short and address-like; the CEL IP library (Kubernetes
// 1.31+) then checks octets, lengths and host bits, which a pattern cannot.
const cidr = z
  .string()
  .max(43)
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,3}$|^[0-9a-fA-F:]+\/\d{1,3}$/, { error: CIDR_MESSAGE })
  .superRefine((text, ctx) => {
    const problem = cidrProblem(text);
    if (problem) ctx.addIssue({ code: "custom", message: `${text}: ${problem}` });
  })
  .meta({
    description:
      "An IP prefix in CIDR notation with no host bits set, IPv4 (10.64.0.0/12) or IPv6 (fd00:64::/48).",
    ...cel(
      { rule: "isCIDR(self)", message: CIDR_MESSAGE },
      {
        rule: "!isCIDR(self) || cidr(self).masked() == cidr(self)",
        // A messageExpression naming the masked prefix costs more than a CRD may spend.
        message:
          "must not have host bits set: the address must be the prefix's first (10.0.0.0/16, not 10.0.0.1/16)",
      },
    ),
  });

export const DatacenterSpec = z
  .strictObject({
    displayName: z
      .string()
      .max(200)
      .default("")
      .meta({ description: "A human-readable name, shown to tenants." }),
    site: name.meta({ description: "The physical site (a campus or city)." }),
    failureDomain: name.meta({ description: "The failure domain within the site." }),
    nats: z
      .strictObject({
        url: z.string().optional().meta({ description: "The site's NATS servers." }),
        jetstreamDomain: name.optional().meta({ description: "The site's JetStream domain." }),
      })
      .prefault({})
      .meta({ description: "How the datacenter's domain workers reach NATS JetStream." }),
    postgres: z
      .strictObject({
        url: z.string().optional().meta({ description: "The site's PostgreSQL (no credentials)." }),
      })
      .prefault({})
      .meta({ description: "The datacenter's PostgreSQL, for its site-local data." }),
    objectStorageGiB: z
      .number()
      .int()
      .min(0)
      .default(0)
      .meta({ description: "Object-storage capacity buckets may reserve." }),
  })
  .meta({ description: "A datacenter: identity, site, failure domain and endpoints." });

export const VlanRange = z
  .strictObject({
    start: z
      .number()
      .int()
      .min(1)
      .max(4094)
      .meta({ description: "The first VLAN id of the range (1-4094)." }),
    end: z
      .number()
      .int()
      .min(1)
      .max(4094)
      .meta({ description: "The last VLAN id of the range (1-4094), at least start." }),
  })
  .refine((r) => r.start <= r.end, { error: "start must not be above end", path: ["start"] })
  .meta({
    description: "VLAN ids start to end, both included.",
    ...cel({
      rule: "self.start <= self.end",
      message: "start must not be above end",
      fieldPath: ".start",
    }),
  });

const overlapping = (ranges: readonly { start: number; end: number }[]): boolean =>
  ranges.some((a, i) => ranges.some((b, j) => i < j && a.start <= b.end && b.start <= a.end));

/** The first pair of valid prefixes that overlap, as indexes (an invalid one has its own issue). */
function overlappingPrefixes(prefixes: readonly string[]): [number, number] | undefined {
  const valid = prefixes.map((p) => cidrProblem(p) === undefined);
  for (let j = 1; j < prefixes.length; j++)
    for (let i = 0; i < j; i++)
      if (valid[i] && valid[j] && cidrsOverlap(prefixes[i] as string, prefixes[j] as string))
        return [i, j];
  return undefined;
}

export const NetworkPoolSpec = z
  .strictObject({
    datacenter: name.meta({ description: "The Datacenter whose tenant networks use this pool." }),
    default: z
      .boolean()
      .default(false)
      .meta({ description: "Networks of the datacenter that name no pool use this one." }),
    vlanRanges: z
      .array(VlanRange)
      .max(64)
      .default([])
      .refine((r) => !overlapping(r), { error: "VLAN ranges must not overlap" })
      .meta({
        description:
          "The VLAN ids networks of this pool get, as ranges; no two ranges of a datacenter's pools may overlap.",
        ...cel({
          // A reversed range is the other rule's to report, not an overlap with itself.
          rule: "self.all(a, a.start > a.end || self.exists_one(b, a.start <= b.end && b.start <= a.end))",
          message: "VLAN ranges must not overlap",
        }),
      }),
    prefixes: z
      .array(cidr)
      .max(64)
      .default([])
      .superRefine((prefixes, ctx) => {
        const pair = overlappingPrefixes(prefixes);
        if (pair)
          ctx.addIssue({
            code: "custom",
            path: [pair[1]],
            message: `${prefixes[pair[1]]} overlaps spec.prefixes[${pair[0]}] ${prefixes[pair[0]]}`,
          });
      })
      .meta({
        description:
          "The IP prefixes networks of this pool are carved from; no two prefixes of a datacenter's pools may overlap.",
        ...cel({
          // An invalid prefix is the item rules' to report; exists_one counts `a` itself.
          rule: "self.all(a, !isCIDR(a) || self.exists_one(b, isCIDR(b) && (cidr(a).containsCIDR(cidr(b)) || cidr(b).containsCIDR(cidr(a)))))",
          message: "prefixes must not overlap (or repeat)",
        }),
      }),
  })
  .meta({
    description: "VLAN ranges and IP prefixes tenant networks of a datacenter are carved from.",
  });

const cpuCores = (description: string) => z.number().int().min(1).max(1024).meta({ description });
const memoryMiB = (description: string) => z.number().int().min(512).meta({ description });

export const ServerEntry = z
  .strictObject({
    name: name.meta({ description: "The server's name, unique in the pool." }),
    machineClass: name.meta({ description: "The MachineClass the server is offered as." }),
    cpuCores: cpuCores("CPU cores of the server."),
    memoryMiB: memoryMiB("Memory of the server, in MiB (at least 512)."),
  })
  .meta({ description: "One physical server." });

export const ServerPoolSpec = z
  .strictObject({
    datacenter: name.meta({ description: "The Datacenter the servers stand in." }),
    servers: z
      .array(ServerEntry)
      .max(5000)
      .default([])
      .meta({ description: "The servers, listed one by one (besides `generated`)." }),
    generated: z
      .strictObject({
        count: z
          .number()
          .int()
          .min(1)
          .max(5000)
          .meta({ description: "How many servers (1-5000)." }),
        namePrefix: name.meta({ description: "Names are <namePrefix>-000, <namePrefix>-001, …" }),
        machineClass: name.meta({ description: "The MachineClass every server is offered as." }),
        cpuCores: cpuCores("CPU cores of each server."),
        memoryMiB: memoryMiB("Memory of each server, in MiB (at least 512)."),
      })
      .optional()
      .meta({
        description: "Servers named <namePrefix>-000 … of one class, instead of listing each.",
      }),
  })
  .meta({
    description:
      "Physical servers of a datacenter that tenants' servers and clusters are built on.",
  });

export const MachineClassSpec = z
  .strictObject({
    description: z
      .string()
      .max(500)
      .default("")
      .meta({ description: "What the size is for, shown to tenants." }),
    cpuCores: cpuCores("CPU cores a server of this class has."),
    memoryMiB: memoryMiB("Memory a server of this class has, in MiB (at least 512)."),
  })
  .meta({ description: "A size tenants may request." });

/** A quota's default limit: a count (or GiB, or addresses) a tenant may hold. */
const limit = (fallback: number, description: string) =>
  z.number().int().min(0).max(1_000_000_000).default(fallback).meta({ description });

export const PlatformPolicySpec = z
  .strictObject({
    quotas: z
      .strictObject({
        networksPerEnvironment: limit(50, "Networks in one environment of a tenant."),
        serversPerEnvironment: limit(100, "Servers in one environment of a tenant."),
        clustersPerEnvironment: limit(10, "Clusters in one environment of a tenant."),
        bucketsPerEnvironment: limit(50, "Buckets in one environment of a tenant."),
        environments: limit(20, "Environments of one tenant."),
        clusters: limit(10, "Kubernetes clusters of one tenant."),
        buckets: limit(50, "Object-storage buckets of one tenant."),
        bucketStorageGiB: limit(10_240, "GiB of object storage one tenant's buckets may hold."),
        vlans: limit(
          64,
          "VLANs one tenant may hold in each datacenter (a network or cluster is one).",
        ),
        addresses: limit(
          16_384,
          "IPv4 addresses one tenant may hold in each datacenter, summed over its prefixes (a /24 is 256; the default is a /18).",
        ),
        servers: limit(
          32,
          "Servers one tenant may hold of each machine class (a cluster counts its workers plus one).",
        ),
      })
      .prefault({})
      .meta({
        description:
          "The default limits of every tenant; an operator overrides them per tenant (`dv quota set`). Refused requests answer 409 quota-exceeded.",
      }),
    features: z.record(name, z.boolean()).default({}).meta({ description: "Feature flags." }),
    defaults: z
      .strictObject({
        networkPrefixLength: z.number().int().min(16).max(29).default(24).meta({
          description: "The prefix length a network gets when it asks for none (16-29).",
        }),
      })
      .prefault({})
      .meta({ description: "What a tenant's request gets when it leaves a field out." }),
  })
  .meta({ description: "Quotas, feature flags and defaults of the platform." });

export const RecoveryPolicySpec = z
  .strictObject({
    context: z
      .enum(["tenancy", "inventory", "task", "audit", "platform", "runtime"])
      .meta({ description: "The bounded context whose PostgreSQL schema these targets are for." }),
    rpoClass: z.enum(["zero", "minutes", "hours", "day"]).meta({
      description:
        "How much recent data a failure may lose: zero (only a synchronous replica meets it), minutes (≤ 15 min), hours (≤ 4 h), day (≤ 24 h).",
    }),
    rtoClass: z.enum(["minutes", "hours", "day"]).meta({
      description: "How long recovery may take: minutes (≤ 15 min), hours (≤ 4 h), day (≤ 24 h).",
    }),
    crossSiteReplication: z.enum(["required", "optional", "not-assumed"]).meta({
      description:
        "Whether the data must be replicated to another site: required, optional, or not-assumed (a site loss may lose it).",
    }),
    failover: z.enum(["automatic", "operator-approved", "manual"]).meta({
      description:
        "Who moves the primary to another site: automatic, operator-approved (the system proposes, an operator confirms), or manual.",
    }),
  })
  .meta({
    description: "The recovery targets of one bounded context's PostgreSQL data (seed 002).",
  });

// ------------------------------------------------------------------ status

/** A condition, as in Kubernetes' metav1.Condition. */
export const Condition = z
  .strictObject({
    type: z.string().max(316).meta({ description: "Ready, Reconciling or Stalled." }),
    status: z
      .enum(["True", "False", "Unknown"])
      .meta({ description: "Whether the condition holds: True, False or Unknown." }),
    reason: z.string().max(1024).meta({
      description:
        "Why, in one CamelCase word (InvalidSpec, Overlap, DependencyMissing, InUse, …).",
    }),
    message: z
      .string()
      .max(32768)
      .meta({ description: "Why, for a human: names the field or the object concerned." }),
    lastTransitionTime: z.iso
      .datetime()
      .meta({ description: "When the condition last changed its status." }),
    observedGeneration: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: "The metadata.generation the condition was written for." }),
  })
  .meta({ description: "One condition, as in Kubernetes' metav1.Condition." });

const PoolUsage = (what: string) =>
  z
    .strictObject({
      total: z
        .number()
        .int()
        .meta({ description: `${what} the pool has.` }),
      free: z
        .number()
        .int()
        .meta({ description: `${what} not allocated to anything.` }),
    })
    .meta({ description: `${what} of the pool: how many, and how many are free.` });

const usedBy = z
  .array(z.string())
  .meta({ description: "What uses this pool (at most 20), as '<kind> <id>'." });

/** What each kind reports besides conditions and observedGeneration. */
export const STATUS_FIELDS: Readonly<Record<string, Record<string, z.ZodType>>> = {
  Datacenter: {
    objectStorageGiB: z
      .number()
      .int()
      .meta({ description: "The object-storage capacity applied, in GiB." }),
  },
  NetworkPool: { vlans: PoolUsage("VLAN ids"), usedBy },
  ServerPool: {
    servers: PoolUsage("Servers"),
    retained: z.array(z.string()).meta({
      description: "Servers gone from the spec but kept until their owner releases them.",
    }),
    usedBy,
  },
  MachineClass: {
    cpuCores: z.number().int().meta({ description: "The CPU cores applied." }),
    memoryMiB: z.number().int().meta({ description: "The memory applied, in MiB." }),
  },
};

/** The status of `kind`: kstatus conditions, observedGeneration, and the kind's own fields. */
export function statusSchema(kind: string) {
  return z
    .object({
      // -1 until the controller's first pass (a default the API server fills in), so kstatus —
      // Flux's health checks — sees a new object as in progress rather than ready.
      observedGeneration: z.number().int().min(-1).default(-1).meta({
        description:
          "The metadata.generation the controller last looked at; -1 before its first pass.",
      }),
      conditions: z
        .array(Condition)
        .max(8)
        .optional()
        .meta({
          "x-kubernetes-list-type": "map",
          "x-kubernetes-list-map-keys": ["type"],
          description: "Ready; Reconciling and Stalled only while true (kstatus).",
        }),
      ...Object.fromEntries(
        Object.entries(STATUS_FIELDS[kind] ?? {}).map(([k, v]) => [k, z.optional(v)]),
      ),
    })
    .prefault({})
    .meta({ description: "What the controller observed." });
}

/** One kind: its names and the schema of its spec. */
export interface KindDefinition {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly spec: z.ZodType;
  /** CEL rules on `spec` (the zod schema carries the same checks). */
  readonly specRules?: readonly CelRule[];
  /** Extra printer columns besides Ready, Status and Age. */
  readonly columns?: readonly {
    name: string;
    type: "string" | "integer" | "boolean";
    jsonPath: string;
    priority?: number;
  }[];
  readonly description: string;
}

export const KINDS: readonly KindDefinition[] = [
  {
    kind: "Datacenter",
    plural: "datacenters",
    singular: "datacenter",
    shortNames: ["dc"],
    spec: DatacenterSpec,
    description:
      "A Dataverket datacenter: identity, site, failure domain, NATS and PostgreSQL endpoints.",
    columns: [
      { name: "Site", type: "string", jsonPath: ".spec.site" },
      { name: "Failure-Domain", type: "string", jsonPath: ".spec.failureDomain", priority: 1 },
    ],
  },
  {
    kind: "NetworkPool",
    plural: "networkpools",
    singular: "networkpool",
    shortNames: ["np"],
    spec: NetworkPoolSpec,
    description:
      "VLAN ranges and IP prefixes of a datacenter that tenant networks are allocated from.",
    columns: [
      { name: "Datacenter", type: "string", jsonPath: ".spec.datacenter" },
      { name: "Default", type: "boolean", jsonPath: ".spec.default" },
      { name: "VLANs-Free", type: "integer", jsonPath: ".status.vlans.free", priority: 1 },
    ],
  },
  {
    kind: "ServerPool",
    plural: "serverpools",
    singular: "serverpool",
    shortNames: ["sp"],
    spec: ServerPoolSpec,
    description: "Physical servers of a datacenter (inventory seed).",
    columns: [
      { name: "Datacenter", type: "string", jsonPath: ".spec.datacenter" },
      { name: "Servers", type: "integer", jsonPath: ".status.servers.total" },
      { name: "Free", type: "integer", jsonPath: ".status.servers.free" },
    ],
  },
  {
    kind: "MachineClass",
    plural: "machineclasses",
    singular: "machineclass",
    shortNames: ["mc"],
    spec: MachineClassSpec,
    description: "A server size tenants may request.",
    columns: [
      { name: "CPU", type: "integer", jsonPath: ".spec.cpuCores" },
      { name: "Memory-MiB", type: "integer", jsonPath: ".spec.memoryMiB" },
    ],
  },
  {
    kind: "PlatformPolicy",
    plural: "platformpolicies",
    singular: "platformpolicy",
    shortNames: ["pp"],
    spec: PlatformPolicySpec,
    description: "Quotas, feature flags and defaults of the platform.",
  },
  {
    kind: "RecoveryPolicy",
    plural: "recoverypolicies",
    singular: "recoverypolicy",
    shortNames: ["rp"],
    spec: RecoveryPolicySpec,
    description:
      "Recovery targets of one bounded context's data: RPO and RTO class, replication, failover.",
    columns: [
      { name: "Context", type: "string", jsonPath: ".spec.context" },
      { name: "RPO", type: "string", jsonPath: ".spec.rpoClass" },
      { name: "Failover", type: "string", jsonPath: ".spec.failover" },
    ],
  },
];

/** The definition of `kind`, if it is one of ours. */
export function kindOf(kind: string): KindDefinition | undefined {
  return KINDS.find((k) => k.kind === kind);
}
