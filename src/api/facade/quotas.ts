import type { QuotaName, QuotaView } from "../../contexts/inventory/index.js";
import { inTransaction } from "../../db/index.js";
import type { FacadeCore } from "./core.js";
import { auditEntry, type CallContext, isUuid, requireOperator } from "./scope.js";

/** A tenant's quotas as the API shows them: its id with the limits and the usage. */
export type TenantQuotas = QuotaView & { tenantId: string };

/** A tenant's quotas: what it may hold and what it holds; operators set its overrides. */
export class QuotaFacade {
  readonly #core: FacadeCore;

  constructor(core: FacadeCore) {
    this.#core = core;
  }

  /** A tenant's quotas: the limits in force and what it holds (the tenant's own roles too). */
  async getQuotas(ctx: CallContext, tenantRef: string): Promise<TenantQuotas> {
    const { scope, inventory, tenancy } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const view = await inventory.quotas.view(tenantId);
    const projectScope = ctx.principal.project;
    if (projectScope === undefined) return { tenantId, ...view };
    // A project-scoped token sees the per-environment quotas of its own project's environments
    // only: another project's environment ids are not its to see (found by the access sweep).
    const projectId = await scope.projectId(ctx, tenantId, projectScope);
    const own = new Set<string>();
    let after: string | undefined;
    do {
      const page = await tenancy.listEnvironments(tenantId, projectId, { limit: 500, after });
      for (const env of page.items) own.add(env.id);
      after = page.next;
    } while (after !== undefined);
    const visible = (s: string): boolean => !isUuid(s) || own.has(s);
    return {
      tenantId,
      limits: view.limits.filter((l) => visible(l.scope)),
      usage: view.usage.filter((u) => visible(u.scope)),
    };
  }

  /**
   * Replaces a tenant's overrides of one quota (operators), audited: `limits` by scope, `*` for
   * every scope without one of its own; empty to go back to the platform's default. A limit below
   * what the tenant holds takes nothing away; it refuses new requests until usage drops.
   */
  async setQuota(
    ctx: CallContext,
    tenantRef: string,
    quota: QuotaName,
    limits: Readonly<Record<string, number>>,
  ): Promise<TenantQuotas> {
    requireOperator(ctx, "change quotas");
    const { scope, inventory, audit } = this.#core;
    const tenantId = await scope.tenantId(ctx, tenantRef);
    await inTransaction(this.#core.db, async (tx) => {
      const before = await inventory.quotas.view(tenantId, tx);
      await inventory.quotas.setOverrides(tx, tenantId, quota, limits);
      await audit.record(
        tx,
        auditEntry(ctx, {
          tenantId,
          datacenterId: "-",
          action: "quota.update",
          resourceKind: "quota",
          resourceId: quota,
          before: {
            limits: Object.fromEntries(
              before.limits
                .filter((l) => l.quota === quota && l.source === "tenant")
                .map((l) => [l.scope, l.limit]),
            ),
          },
          after: { limits },
        }),
      );
    });
    return { tenantId, ...(await inventory.quotas.view(tenantId)) };
  }
}
