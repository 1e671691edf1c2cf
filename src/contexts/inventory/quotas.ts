import { and, asc, eq, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  executeNamed,
  type Orm,
  rowsOf,
  type Tx,
} from "../../db/index.js";
import { QuotaExceededError } from "../../kernel/index.js";
import { quotaDefaults, quotaOverrides, quotaUsage } from "./schema.js";

/** What one quota counts, and per what it is counted. */
export interface QuotaDefinition {
  /** `tenant`: one count for the whole tenant (scope `*`); otherwise one count per scope. */
  readonly per: "tenant" | "datacenter" | "machineClass" | "environment";
  readonly description: string;
}

/**
 * Every tenant quota. A request is charged what its spec asks for when it is recorded and
 * refunded when the resource is gone, so a quota bounds what a tenant may hold or be building.
 */
export const QUOTAS = {
  environments: { per: "tenant", description: "Environments of the tenant." },
  clusters: { per: "tenant", description: "Kubernetes clusters of the tenant." },
  buckets: { per: "tenant", description: "Object-storage buckets of the tenant." },
  bucketStorageGiB: {
    per: "tenant",
    description: "GiB of object storage the tenant's buckets may hold, summed over buckets.",
  },
  vlans: {
    per: "datacenter",
    description: "VLANs per datacenter (one per network, one per cluster).",
  },
  addresses: {
    per: "datacenter",
    description:
      "IPv4 addresses per datacenter, summed over the prefixes of networks and clusters (a /24 is 256).",
  },
  servers: {
    per: "machineClass",
    description: "Servers per machine class (a server is one, a cluster its workers plus one).",
  },
  networksPerEnvironment: { per: "environment", description: "Networks in one environment." },
  serversPerEnvironment: { per: "environment", description: "Servers in one environment." },
  clustersPerEnvironment: { per: "environment", description: "Clusters in one environment." },
  bucketsPerEnvironment: { per: "environment", description: "Buckets in one environment." },
} as const satisfies Record<string, QuotaDefinition>;

export type QuotaName = keyof typeof QUOTAS;
export const QUOTA_NAMES = Object.keys(QUOTAS) as QuotaName[];

/** The scope of a quota counted once per tenant. */
export const ANY_SCOPE = "*";

/** An amount of one quota in one scope. */
export interface Demand {
  readonly quota: QuotaName;
  readonly scope: string;
  readonly amount: number;
}

/** Where a resource lives, for the scopes of what it demands. */
export interface DemandPlace {
  readonly datacenterId: string;
  readonly environmentId: string;
}

const int = (value: unknown, fallback: number): number =>
  typeof value === "number" && Number.isInteger(value) ? value : fallback;

/**
 * What a resource of `kind` with `spec` counts against its tenant's quotas. Mirrors the backfill
 * of migration 0014 (keep the two alike). Specs are validated before they reach this; defaults
 * are the API's.
 */
export function demandOf(kind: string, spec: Record<string, unknown>, at: DemandPlace): Demand[] {
  const dc = at.datacenterId;
  const perEnvironment = (quota: QuotaName): Demand => ({
    quota,
    scope: at.environmentId,
    amount: 1,
  });
  const addresses = (): Demand => ({
    quota: "addresses",
    scope: dc,
    amount: 2 ** (32 - int(spec.prefixLength, 24)),
  });
  switch (kind) {
    case "network":
      return [
        { quota: "vlans", scope: dc, amount: 1 },
        addresses(),
        perEnvironment("networksPerEnvironment"),
      ];
    case "server":
      return [
        { quota: "servers", scope: String(spec.machineClass), amount: 1 },
        perEnvironment("serversPerEnvironment"),
      ];
    case "cluster":
      return [
        { quota: "clusters", scope: ANY_SCOPE, amount: 1 },
        { quota: "vlans", scope: dc, amount: 1 },
        addresses(),
        { quota: "servers", scope: String(spec.machineClass), amount: int(spec.workers, 3) + 1 },
        perEnvironment("clustersPerEnvironment"),
      ];
    case "bucket":
      return [
        { quota: "buckets", scope: ANY_SCOPE, amount: 1 },
        { quota: "bucketStorageGiB", scope: ANY_SCOPE, amount: int(spec.quotaGiB, 0) },
        perEnvironment("bucketsPerEnvironment"),
      ];
    default:
      return [];
  }
}

/** `after` minus `before`, per quota and scope, without the ones that did not change. */
export function demandDelta(before: readonly Demand[], after: readonly Demand[]): Demand[] {
  const sums = new Map<string, Demand>();
  const add = (d: Demand, sign: number) => {
    const key = `${d.quota}\u0000${d.scope}`;
    const prior = sums.get(key)?.amount ?? 0;
    sums.set(key, { quota: d.quota, scope: d.scope, amount: prior + sign * d.amount });
  };
  for (const d of before) add(d, -1);
  for (const d of after) add(d, 1);
  return [...sums.values()].filter((d) => d.amount !== 0);
}

/** A limit in force for a tenant. */
export interface QuotaLimit {
  readonly quota: QuotaName;
  /** `*`: every scope without a limit of its own. */
  readonly scope: string;
  /** `null`: no limit. */
  readonly limit: number | null;
  /** `policy`: the PlatformPolicy's default; `tenant`: an operator's override; `none`. */
  readonly source: "policy" | "tenant" | "none";
}

/** What a tenant holds of one quota in one scope, and the limit in force there. */
export interface QuotaUse {
  readonly quota: QuotaName;
  readonly scope: string;
  readonly used: number;
  readonly limit: number | null;
}

/** A tenant's quotas: the limits in force and what it holds. */
export interface QuotaView {
  readonly limits: QuotaLimit[];
  readonly usage: QuotaUse[];
}

/**
 * Tenant quotas, in the inventory context (they bound its scarce resources): the platform's
 * defaults, operators' overrides per tenant, and what each tenant holds. Charging is one
 * statement: an upsert of the usage rows that returns the limits in force; its row locks order
 * concurrent requests of a tenant, so two of them can never both take the last unit.
 */
export class QuotaStore extends ContextStore {
  constructor(db: Database) {
    super(db, ContextRole.inventory);
  }

  /**
   * Charges `demands` to the tenant inside the caller's transaction; a negative amount refunds.
   *
   * @throws {QuotaExceededError} when a positive charge takes a quota past its limit (the caller's
   *   transaction must then roll back, which undoes the charge).
   */
  charge(tx: Tx, tenantId: string, demands: readonly Demand[]): Promise<void> {
    const wanted = demands.filter((d) => d.amount !== 0);
    if (wanted.length === 0) return Promise.resolve();
    return this.inTx(tx, async (q) => {
      const rows = rowsOf<{
        quota: QuotaName;
        scope: string;
        used: string;
        amount: string;
        limit: string | null;
      }>(
        await executeNamed(
          q,
          "inventory_quota_charge",
          sql`
          WITH d AS (
            SELECT * FROM unnest(
              ${`{${wanted.map((d) => quoted(d.quota)).join(",")}}`}::text[],
              ${`{${wanted.map((d) => quoted(d.scope)).join(",")}}`}::text[],
              ${`{${wanted.map((d) => d.amount).join(",")}}`}::bigint[]
            ) AS d(quota, scope, amount)
          ), charged AS (
            INSERT INTO ${quotaUsage} AS u (tenant_id, quota, scope, used)
            SELECT ${tenantId}::uuid, d.quota, d.scope, greatest(d.amount, 0) FROM d
            ORDER BY d.quota, d.scope
            ON CONFLICT (tenant_id, quota, scope)
              DO UPDATE SET used = greatest(u.used + (
                SELECT d.amount FROM d WHERE d.quota = EXCLUDED.quota AND d.scope = EXCLUDED.scope
              ), 0)
            RETURNING u.quota, u.scope, u.used
          )
          SELECT c.quota, c.scope, c.used, d.amount,
            coalesce(o.limit, a.limit, p.limit) AS limit
          FROM charged c
          JOIN d ON d.quota = c.quota AND d.scope = c.scope
          LEFT JOIN ${quotaOverrides} o
            ON o.tenant_id = ${tenantId}::uuid AND o.quota = c.quota AND o.scope = c.scope
          LEFT JOIN ${quotaOverrides} a
            ON a.tenant_id = ${tenantId}::uuid AND a.quota = c.quota AND a.scope = '*'
          LEFT JOIN ${quotaDefaults} p ON p.quota = c.quota`,
        ),
      );
      for (const row of rows) {
        const amount = Number(row.amount);
        if (amount <= 0 || row.limit === null) continue;
        const used = Number(row.used);
        if (used > Number(row.limit)) {
          throw new QuotaExceededError({
            quota: row.quota,
            scope: row.scope,
            limit: Number(row.limit),
            used: used - amount,
            requested: amount,
          });
        }
      }
    });
  }

  /** Sets the platform's default limits (from a PlatformPolicy), replacing the earlier ones. */
  applyDefaults(tx: Tx, policy: string, limits: Partial<Record<QuotaName, number>>): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q.delete(quotaDefaults);
      const rows = Object.entries(limits)
        .filter(([quota, limit]) => quota in QUOTAS && typeof limit === "number")
        .map(([quota, limit]) => ({ quota, limit: limit, policy }));
      if (rows.length > 0) await q.insert(quotaDefaults).values(rows);
    });
  }

  /** Forgets the defaults a removed PlatformPolicy set. */
  removeDefaults(tx: Tx, policy: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q.delete(quotaDefaults).where(eq(quotaDefaults.policy, policy));
    });
  }

  /**
   * Replaces a tenant's overrides of one quota: `limits` by scope (`*` for every scope without
   * one of its own); an empty object goes back to the platform's default.
   */
  setOverrides(
    tx: Tx,
    tenantId: string,
    quota: QuotaName,
    limits: Readonly<Record<string, number>>,
  ): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q
        .delete(quotaOverrides)
        .where(and(eq(quotaOverrides.tenantId, tenantId), eq(quotaOverrides.quota, quota)));
      const rows = Object.entries(limits).map(([scope, limit]) => ({
        tenantId,
        quota,
        scope,
        limit,
      }));
      if (rows.length > 0) await q.insert(quotaOverrides).values(rows);
    });
  }

  /** Forgets everything of a deleted tenant. */
  forgetTenant(tx: Tx, tenantId: string): Promise<void> {
    return this.inTx(tx, async (q) => {
      await q.delete(quotaOverrides).where(eq(quotaOverrides.tenantId, tenantId));
      await q.delete(quotaUsage).where(eq(quotaUsage.tenantId, tenantId));
    });
  }

  /** The limits in force for a tenant and what it holds (usage rows at zero left out). */
  view(tenantId: string, tx?: Tx): Promise<QuotaView> {
    return this.reading(tx, async (q) => {
      const defaults = await q.select().from(quotaDefaults);
      const overrides = await q
        .select()
        .from(quotaOverrides)
        .where(eq(quotaOverrides.tenantId, tenantId))
        .orderBy(asc(quotaOverrides.quota), asc(quotaOverrides.scope));
      const usage = await q
        .select()
        .from(quotaUsage)
        .where(and(eq(quotaUsage.tenantId, tenantId), sql`${quotaUsage.used} > 0`))
        .orderBy(asc(quotaUsage.quota), asc(quotaUsage.scope));
      return viewOf(defaults, overrides, usage);
    });
  }

  /** What a tenant holds of every quota, as charged (for tests and `dv`). */
  async usage(tenantId: string, tx?: Tx): Promise<Map<string, number>> {
    const rows = await this.reading(tx, (q: Orm) =>
      q.select().from(quotaUsage).where(eq(quotaUsage.tenantId, tenantId)),
    );
    return new Map(rows.map((r) => [`${r.quota}/${r.scope}`, r.used]));
  }
}

function viewOf(
  defaults: { quota: string; limit: number }[],
  overrides: { quota: string; scope: string; limit: number }[],
  usage: { quota: string; scope: string; used: number }[],
): QuotaView {
  const policy = new Map(defaults.map((d) => [d.quota, d.limit]));
  const own = new Map(overrides.map((o) => [`${o.quota}\u0000${o.scope}`, o.limit]));
  const limitOf = (quota: string, scope: string): number | null =>
    own.get(`${quota}\u0000${scope}`) ?? own.get(`${quota}\u0000*`) ?? policy.get(quota) ?? null;
  const limits: QuotaLimit[] = [];
  for (const quota of QUOTA_NAMES) {
    const anyScope = own.get(`${quota}\u0000*`);
    const fromPolicy = policy.get(quota);
    limits.push({
      quota,
      scope: ANY_SCOPE,
      limit: anyScope ?? fromPolicy ?? null,
      source: anyScope !== undefined ? "tenant" : fromPolicy !== undefined ? "policy" : "none",
    });
    for (const o of overrides) {
      if (o.quota === quota && o.scope !== ANY_SCOPE)
        limits.push({ quota, scope: o.scope, limit: o.limit, source: "tenant" });
    }
  }
  return {
    limits,
    usage: usage
      .filter((u) => u.quota in QUOTAS)
      .map((u) => ({
        quota: u.quota as QuotaName,
        scope: u.scope,
        used: u.used,
        limit: limitOf(u.quota, u.scope),
      })),
  };
}

/** An element of a PostgreSQL array literal, quoted. */
function quoted(value: string): string {
  return `"${value.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}
