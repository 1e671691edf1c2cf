import type { Command } from "commander";
import { type ApiTarget, callApi } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { age, formatted, table } from "../output.js";

/** A platform kind `dv get` shows, with its names and where the API serves it. */
interface CatalogKind {
  readonly singular: string;
  readonly plural: string;
  readonly aliases: readonly string[];
  /** Its collection under /api/v1. */
  readonly path: string;
  /** Its columns between NAME/READY and AGE, and what `-o wide` adds. */
  readonly columns: readonly string[];
  readonly cells: (o: CatalogObject) => string[];
  readonly wide: readonly string[];
  readonly wideCells: (o: CatalogObject) => string[];
}

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

interface Count {
  readonly total: number;
  readonly free: number;
}

/** A catalog object, or a platform object as operators see it (`/platform/{kind}`). */
export interface CatalogObject {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly createdAt: string };
  readonly spec: Record<string, unknown>;
  readonly status: {
    readonly conditions?: readonly Condition[];
    readonly [field: string]: unknown;
  };
}

const free = (c: unknown): string => {
  const n = c as Count | undefined;
  return n ? `${n.free}/${n.total}` : "";
};
const list = (v: unknown): string => (Array.isArray(v) ? v.join(",") : "");
const byKey = (v: unknown, key: string): string =>
  Array.isArray(v)
    ? (v as Record<string, unknown>[])
        .map((c) => `${String(c[key])}=${String(c.free)}/${String(c.total)}`)
        .join(",")
    : "";
const text = (v: unknown): string =>
  typeof v === "string" ? v : v === undefined ? "" : JSON.stringify(v);

/** The platform kinds of `dv get`, kubectl-like: plural, singular, short name. */
export const CATALOG_KINDS: readonly CatalogKind[] = [
  {
    singular: "datacenter",
    plural: "datacenters",
    aliases: ["dc"],
    path: "/datacenters",
    columns: ["site", "network pools", "machine classes", "storage free GiB"],
    cells: (o) => [
      text(o.spec.site),
      list(o.status.networkPools),
      list(o.status.machineClasses),
      free(o.status.objectStorageGiB),
    ],
    wide: ["failure domain", "default pool"],
    wideCells: (o) => [text(o.spec.failureDomain), text(o.status.defaultNetworkPool ?? "")],
  },
  {
    singular: "machineclass",
    plural: "machineclasses",
    aliases: ["mc", "machine-class", "machine-classes"],
    path: "/machine-classes",
    columns: ["cpu", "memory MiB", "servers free"],
    cells: (o) => [text(o.spec.cpuCores), text(o.spec.memoryMiB), free(o.status.servers)],
    wide: ["by datacenter"],
    wideCells: (o) => [byKey(o.status.datacenters, "datacenter")],
  },
  {
    singular: "networkpool",
    plural: "networkpools",
    aliases: ["np", "network-pool", "network-pools"],
    path: "/network-pools",
    columns: ["datacenter", "default", "vlans free", "addresses free"],
    cells: (o) => [
      text(o.spec.datacenter),
      o.spec.default === true ? "yes" : "",
      free(o.status.vlans),
      free(o.status.addresses),
    ],
    wide: ["largest free", "prefixes"],
    wideCells: (o) => [
      typeof o.status.largestFreePrefixLength === "number"
        ? `/${o.status.largestFreePrefixLength}`
        : "",
      list(o.spec.prefixes),
    ],
  },
  {
    singular: "serverpool",
    plural: "serverpools",
    aliases: ["sp", "server-pool", "server-pools"],
    path: "/server-pools",
    columns: ["datacenter", "servers free"],
    cells: (o) => [text(o.spec.datacenter), free(o.status.servers)],
    wide: ["by machine class"],
    wideCells: (o) => [byKey(o.status.machineClasses, "machineClass")],
  },
  {
    singular: "platformpolicy",
    plural: "platformpolicies",
    aliases: ["pp"],
    path: "/platform/platformpolicies",
    columns: [],
    cells: () => [],
    wide: ["spec"],
    wideCells: (o) => [JSON.stringify(o.spec)],
  },
  {
    singular: "recoverypolicy",
    plural: "recoverypolicies",
    aliases: ["rp"],
    path: "/platform/recoverypolicies",
    columns: ["context", "rpo", "rto", "failover"],
    cells: (o) => [
      text(o.spec.context),
      text(o.spec.rpoClass),
      text(o.spec.rtoClass),
      text(o.spec.failover),
    ],
    wide: [],
    wideCells: () => [],
  },
];

/** The platform kind a word names (`networkpools`, `networkpool`, `np`), if it names one. */
export function catalogKind(word: string): CatalogKind | undefined {
  return CATALOG_KINDS.find(
    (k) => k.singular === word || k.plural === word || k.aliases.includes(word),
  );
}

const ready = (o: CatalogObject): Condition | undefined =>
  o.status.conditions?.find((c) => c.type === "Ready");

/** STATUS beside READY: Stalled's or Reconciling's reason while true, else Ready's. */
const reason = (o: CatalogObject): string =>
  o.status.conditions?.find((c) => c.type === "Stalled" && c.status === "True")?.reason ??
  o.status.conditions?.find((c) => c.type === "Reconciling" && c.status === "True")?.reason ??
  ready(o)?.reason ??
  "";

/** kubectl-like columns of platform objects; `wide` adds the kind's extras and the message. */
export function catalogTable(
  kind: CatalogKind,
  items: readonly CatalogObject[],
  wide: boolean,
): string {
  if (items.length === 0) return `No ${kind.plural} found.\n`;
  return table(
    ["name", "ready", "status", ...kind.columns, "age", ...(wide ? [...kind.wide, "message"] : [])],
    items.map((o) => [
      o.metadata.name,
      ready(o)?.status ?? "",
      reason(o),
      ...kind.cells(o),
      age(o.metadata.createdAt),
      ...(wide ? [...kind.wideCells(o), ready(o)?.message ?? ""] : []),
    ]),
  );
}

/** Every object of a collection, page by page. */
async function listAll(flags: ApiTarget, path: string): Promise<CatalogObject[]> {
  const items: CatalogObject[] = [];
  let cursor: string | undefined;
  do {
    const query = new URLSearchParams({ limit: "500", ...(cursor ? { cursor } : {}) });
    const page = await callApi<{ items: CatalogObject[]; nextCursor?: string }>(
      flags,
      "GET",
      `${path}?${query.toString()}`,
    );
    items.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

/** The flags of `dv get` that matter here. */
export type CatalogGetFlags = ApiTarget & {
  output: string;
  selector?: string;
  watch?: boolean;
};

/**
 * `dv get <platform kind> [name]`: datacenters, machine classes, network and server pools (any
 * caller), platform and recovery policies (operators), through the API — so the same against
 * `dv dev` as against a cluster. Returns false, doing nothing, when `word` names no platform
 * kind (the tenant kinds are `dv get`'s own).
 *
 * @throws {CliError} for a label selector (platform objects have no labels) and API errors.
 */
export async function getCatalog(
  word: string,
  name: string | undefined,
  flags: CatalogGetFlags,
): Promise<boolean> {
  const kind = catalogKind(word);
  if (!kind) return false;
  if (flags.selector)
    throw new CliError(
      `--selector: ${kind.plural} have no labels; list them all, or name one`,
      ExitCode.Usage,
    );
  const wide = flags.output === "wide";
  const show = async (): Promise<string> => {
    if (name) {
      const o = await callApi<CatalogObject>(
        flags,
        "GET",
        `${kind.path}/${encodeURIComponent(name)}`,
      );
      return formatted(flags.output, o, () => catalogTable(kind, [o], wide));
    }
    const items = await listAll(flags, kind.path);
    return formatted(flags.output, { items }, () => catalogTable(kind, items, wide));
  };
  let last = "";
  for (;;) {
    const shown = await show();
    // With --watch, only what changed is printed again.
    if (shown !== last) process.stdout.write(flags.watch && last ? `\n${shown}` : shown);
    last = shown;
    if (!flags.watch) return true;
    await new Promise((r) => setTimeout(r, 2_000));
  }
}

/** The platform kinds, for `dv get --help`. */
const KINDS_HELP = CATALOG_KINDS.map((k) => [k.singular, ...k.aliases.slice(0, 1)].join("|")).join(
  ", ",
);

/**
 * Adds the platform kinds to `dv get` (which `registerResources` adds; its action hands a
 * platform kind to {@link getCatalog}): their names in its help.
 */
export function registerCatalog(program: Command): void {
  const get = program.commands.find((c) => c.name() === "get");
  get?.addHelpText(
    "after",
    `Platform kinds (every caller; policies for operators): ${KINDS_HELP}.\n  npx dv get datacenters\n  npx dv get machineclasses -o wide\n  npx dv get np dc1-tenant -o yaml\n`,
  );
}
