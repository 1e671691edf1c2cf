import { z } from "zod";

/**
 * The tenant kinds — networks, servers, clusters, buckets — and what a tenant may ask of each:
 * one zod schema per kind's `spec`, the single source of the API's validation, the OpenAPI
 * document (`NetworkSpec`, … under `components.schemas`; the API names them) and the
 * reconcilers' types. A stored spec was parsed by its schema on the way in, so it has the
 * schema's output type, defaults filled in.
 */

// ------------------------------------------------------------------ the text specs take

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A name: a DNS label, unique among its siblings, that does not look like a UUID (paths take a
 * name or an id). Every named object of the API uses it, not only the kinds here.
 */
export const Name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
    error:
      "must be a DNS label: lower-case letters, digits and '-', 1 to 63 characters, starting and ending with a letter or digit",
  })
  .refine((v) => !UUID_SHAPE.test(v), {
    error: "must not look like a UUID (paths take a name or an id)",
  })
  .meta({
    description: "A DNS label, unique among its siblings; not shaped like a UUID.",
    example: "web",
    // The refinement above, for the document (zod cannot say it in JSON Schema itself).
    not: { pattern: UUID_SHAPE.source },
  });

// Text people write — a display name, an image, a reason. PostgreSQL refuses NUL in text and in
// JSON (a 500, before this was checked), and control characters have no place in what lists,
// logs and audit trails show; a lone UTF-16 surrogate is no text at all (PostgreSQL's JSON
// refuses it too). Patterns, so the document says it; the surrogate check is beyond JSON Schema.
const ONE_LINE = /^[^\u0000-\u001f\u007f]*$/;
// As above, but tab, newline and carriage return pass.
const LINES = /^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]*$/;
const LONE_SURROGATE = /\p{Cs}/u;

/** One line of text people write, `min` to `max` characters: no control characters at all. */
export const line = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    .regex(ONE_LINE, { error: "must not contain control characters (NUL, tab, newline, …)" })
    .refine((v) => !LONE_SURROGATE.test(v), { error: "must be Unicode text (a lone surrogate)" });

/** Text people write over several lines: tab and newlines pass, other control characters not. */
export const lines = (max: number, min = 0) =>
  z
    .string()
    .min(min)
    .max(max)
    .regex(LINES, { error: "must not contain control characters other than tab and newline" })
    .refine((v) => !LONE_SURROGATE.test(v), { error: "must be Unicode text (a lone surrogate)" });

// ------------------------------------------------------------------ the specs

/** What a tenant asks of a network: an IPv4 prefix of a size, from a pool. */
export const NetworkSpec = z.strictObject({
  prefixLength: z
    .number()
    .int()
    .min(16)
    .max(29)
    .default(24)
    .meta({ description: "Size of the IPv4 prefix to allocate." }),
  networkPool: Name.optional().meta({
    description: "The NetworkPool to allocate from; the datacenter's default when absent.",
    example: "dc1-tenant",
  }),
});
/** A network's spec as stored (defaults filled in). */
export type NetworkSpec = z.infer<typeof NetworkSpec>;

/** What a tenant asks of a server: a machine of a class, an image, a network to attach to. */
export const ServerSpec = z.strictObject({
  machineClass: Name.meta({
    description: "A MachineClass the platform offers.",
    example: "m1-large",
  }),
  image: line(200, 1).default("debian-12"),
  network: Name.optional().meta({
    description: "A network of the same environment to attach to.",
  }),
});
/** A tenant server's spec as stored (defaults filled in); not a server a `ServerPool` lists. */
export type ServerSpec = z.infer<typeof ServerSpec>;

/** What a tenant asks of a Kubernetes cluster: its version, its workers and their network. */
export const ClusterSpec = z.strictObject({
  version: z
    .string()
    .regex(/^1\.[0-9]{1,2}$/, { error: "must be a Kubernetes minor version like 1.34" })
    .default("1.34"),
  machineClass: Name.meta({
    description: "A MachineClass the platform offers, for every worker.",
    example: "m1-large",
  }),
  workers: z.number().int().min(1).max(50).default(3),
  prefixLength: z.number().int().min(16).max(28).default(24),
});
/** A cluster's spec as stored (defaults filled in). */
export type ClusterSpec = z.infer<typeof ClusterSpec>;

/** What a tenant asks of an object-storage bucket: its quota and whether it keeps versions. */
export const BucketSpec = z.strictObject({
  quotaGiB: z.number().int().min(1).max(1_000_000),
  versioning: z.boolean().default(false),
});
/** A bucket's spec as stored (defaults filled in). */
export type BucketSpec = z.infer<typeof BucketSpec>;

// ------------------------------------------------------------------ the kinds

/**
 * Every tenant kind, in the order the API and its document list them: its spec schema, its
 * title (the representation's `kind`), its collection's path segment, and the domain service
 * that carries it out.
 */
export const TENANT_KINDS = {
  network: { title: "Network", path: "networks", spec: NetworkSpec, service: "nett" },
  server: { title: "Server", path: "servers", spec: ServerSpec, service: "maskin" },
  cluster: { title: "Cluster", path: "clusters", spec: ClusterSpec, service: "plattform" },
  bucket: { title: "Bucket", path: "buckets", spec: BucketSpec, service: "objekt" },
} as const;

/** A tenant kind: `network`, `server`, `cluster` or `bucket`. */
export type TenantKind = keyof typeof TENANT_KINDS;

/** The stored spec of tenant kind `K`: `SpecOf<"server">` is {@link ServerSpec}. */
export type SpecOf<K extends TenantKind> = z.infer<(typeof TENANT_KINDS)[K]["spec"]>;
