import { type Command, Option } from "commander";
import { callApi, resolveTarget, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { type OutputFormat, print, table } from "../output.js";
import { type ApiObject, collectionPath, kindInfo, type ScopeFlags } from "./resources.js";

/** An audit record as the API gives it. */
export interface AuditRecord {
  id: string;
  at: string;
  actor: string;
  tenantId: string | null;
  projectId: string | null;
  datacenter: string;
  action: string;
  resource: { kind: string; id: string };
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  correlationId: string;
}

type Flags = ScopeFlags & {
  allTenants?: boolean;
  kind?: string;
  resource?: string;
  actor?: string;
  since?: string;
  from?: string;
  to?: string;
  limit: string;
  output: OutputFormat;
};

const UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** `--since 90s|30m|2h|7d` as the time that long before `now`. @throws {CliError} another shape. */
export function sinceTime(text: string, now = Date.now()): string {
  const match = /^(\d{1,6})([smhd])$/.exec(text);
  if (!match?.[1] || !match[2])
    throw new CliError(`--since "${text}": a duration like 90s, 30m, 2h or 7d`, ExitCode.Usage);
  return new Date(now - Number(match[1]) * (UNITS[match[2]] ?? 1) * 1000).toISOString();
}

/** `{a: {b: 1}}` as `a.b=1` pairs, one level of nesting per dot, for the CHANGE column. */
function flatten(value: unknown, prefix = ""): Map<string, string> {
  const out = new Map<string, string>();
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value))
      for (const [k, v] of flatten(inner, prefix ? `${prefix}.${key}` : key)) out.set(k, v);
  } else if (prefix) out.set(prefix, JSON.stringify(value));
  return out;
}

/** What a record changed, in a line: `spec.prefixLength: 26→25, labels.team: +payments`. */
export function changeOf(record: Pick<AuditRecord, "before" | "after">): string {
  const before = flatten(record.before ?? {});
  const after = flatten(record.after ?? {});
  const parts: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    const was = before.get(key);
    const now = after.get(key);
    if (was === now) continue;
    parts.push(
      was === undefined
        ? `${key}: +${now ?? ""}`
        : now === undefined
          ? `${key}: -${was}`
          : `${key}: ${was}→${now}`,
    );
  }
  const text = parts.join(", ");
  return text.length <= 100 ? text : `${text.slice(0, 99)}…`;
}

/** The name a record gives its resource (creates and deletes carry it). */
const nameIn = (r: AuditRecord): string | undefined => {
  const name = r.after?.name ?? r.before?.name;
  return typeof name === "string" ? name : undefined;
};

/** Adds `dv audit`: who changed what, when — a tenant's trail, or the platform's for operators. */
export function registerAudit(program: Command): void {
  withApiOptions(
    program
      .command("audit")
      .description(
        "the audit trail, oldest first: who changed what and when (a tenant's, or -A the platform's)",
      )
      .option("--tenant <name>", "the tenant (default: the current context's)")
      .option("-A, --all-tenants", "the whole platform's trail (operators)")
      .option("--kind <kind>", "only records about this kind (network, task, quota, tenant, …)")
      .option(
        "--resource <ref>",
        "only records about one object: its id, or kind/name (network/web, in the context's environment)",
      )
      .option("--actor <actor>", "only what this actor did (user:alice, sentral, …)")
      .option("--since <duration>", "only the last 90s, 30m, 2h, 7d")
      .option("--from <time>", "only records at or after this RFC 3339 time (UTC, Z)")
      .option("--to <time>", "only records before this RFC 3339 time (UTC, Z)")
      .option("--limit <n>", "at most this many records (the oldest that match)", "100")
      .option("--project <name>", "the project of --resource kind/name (default: the context's)")
      .option(
        "--environment <name>",
        "the environment of --resource kind/name (default: the context's)",
      )
      .addOption(
        new Option("-o, --output <format>", "how to print the result")
          .choices(["table", "json", "yaml"])
          .default("table"),
      ),
  )
    .addHelpText(
      "after",
      `
Examples:
  npx dv audit --since 1h
  npx dv audit --resource network/web
  npx dv audit -A --actor user:alice -o yaml
`,
    )
    .action(async (flags: Flags) => {
      const limit = Number(flags.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 100_000)
        throw new CliError(`--limit "${flags.limit}": a whole number from 1`, ExitCode.Usage);
      if (flags.since && flags.from)
        throw new CliError("--since and --from both say where to start: pass one", ExitCode.Usage);
      if (flags.allTenants && flags.tenant)
        throw new CliError("--tenant and -A (every tenant): pass one", ExitCode.Usage);
      const query = new URLSearchParams();
      const tenant = flags.allTenants
        ? undefined
        : (flags.tenant ?? (await resolveTarget(flags)).context?.tenant);
      if (!flags.allTenants && !tenant)
        throw new CliError(
          "whose audit trail? pass --tenant, set one in the context (dv config set-context <name> --tenant <name>), or -A for the platform's (operators)",
          ExitCode.Usage,
        );
      if (flags.kind) {
        // A kind dv knows by another word (networks, net) is asked for as the API records it.
        let kind = flags.kind;
        try {
          kind = kindInfo(flags.kind).singular;
        } catch {
          // a kind only the audit trail has (task, quota, dead-letter): as given
        }
        query.set("resourceKind", kind);
      }
      let resolved: { id: string; name: string } | undefined;
      if (flags.resource) {
        const slash = flags.resource.indexOf("/");
        if (slash < 0) query.set("resourceId", flags.resource);
        else {
          const kind = kindInfo(flags.resource.slice(0, slash));
          const name = flags.resource.slice(slash + 1);
          const scope = { ...flags, ...(tenant ? { tenant } : {}) };
          const o = await callApi<ApiObject>(
            flags,
            "GET",
            `${await collectionPath(kind, scope)}/${encodeURIComponent(name)}`,
          );
          query.set("resourceKind", kind.singular);
          query.set("resourceId", o.metadata.id);
          resolved = { id: o.metadata.id, name };
        }
      }
      if (flags.actor) query.set("actor", flags.actor);
      const from = flags.since ? sinceTime(flags.since) : flags.from;
      if (from) query.set("from", from);
      if (flags.to) query.set("to", flags.to);
      const path = tenant ? `/tenants/${encodeURIComponent(tenant)}/audit` : "/audit";
      // Page by page until --limit records, oldest first as the API lists them.
      const items: AuditRecord[] = [];
      // Names by id: of the object --resource named, and of those created or deleted here.
      const names = new Map<string, string>();
      if (resolved) names.set(resolved.id, resolved.name);
      let cursor: string | undefined;
      do {
        const page = new URLSearchParams(query);
        page.set("limit", String(Math.min(500, limit - items.length)));
        if (cursor) page.set("cursor", cursor);
        const got = await callApi<{ items: AuditRecord[]; nextCursor?: string }>(
          flags,
          "GET",
          `${path}?${page.toString()}`,
        );
        items.push(...got.items);
        cursor = got.nextCursor;
      } while (cursor && items.length < limit);
      for (const r of items) {
        const name = nameIn(r);
        if (name) names.set(r.resource.id, name);
      }
      if (cursor)
        process.stderr.write(
          `(the first ${items.length} records; more match: narrow with --since, --from or --kind, or raise --limit)\n`,
        );
      print(flags.output, { items }, () =>
        items.length === 0
          ? "No audit records.\n"
          : table(
              ["time", ...(tenant ? [] : ["tenant"]), "actor", "action", "resource", "change"],
              items.map((r) => [
                r.at.replace(/\.\d+Z$/, "Z"),
                ...(tenant ? [] : [r.tenantId ?? "-"]),
                r.actor,
                r.action,
                `${r.resource.kind}/${names.get(r.resource.id) ?? r.resource.id}`,
                changeOf(r),
              ]),
            ),
      );
    });
}
