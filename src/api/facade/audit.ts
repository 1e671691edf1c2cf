import type { AuditFilter, AuditRecord } from "../../contexts/audit/index.js";
import type { Page } from "../../kernel/index.js";
import type { FacadeCore } from "./core.js";
import { type CallContext, requireOperator } from "./scope.js";

/** The audit trail: a tenant's own records, or the whole platform's for operators. */
export class AuditFacade {
  readonly #core: FacadeCore;

  constructor(core: FacadeCore) {
    this.#core = core;
  }

  /**
   * Audit records: a tenant's own, or (operators, without a tenant) the whole platform's. A
   * project-scoped token sees the records of its project only — not those of other projects, nor
   * the tenant's own (`tenant.*`, `quota.*`), which belong to no project.
   */
  async listAudit(
    ctx: CallContext,
    tenantRef: string | undefined,
    filter: Omit<AuditFilter, "tenantId" | "projectId">,
    options: { limit: number; after?: string | undefined },
  ): Promise<Page<AuditRecord>> {
    const { scope, audit } = this.#core;
    if (tenantRef === undefined) {
      requireOperator(ctx, "read the platform's audit trail");
      return audit.list(filter, options);
    }
    const tenantId = await scope.tenantId(ctx, tenantRef);
    const projectScope = ctx.principal.project;
    if (projectScope === undefined) return audit.list({ ...filter, tenantId }, options);
    const projectId = await scope.projectId(ctx, tenantId, projectScope);
    return audit.list({ ...filter, tenantId, projectId }, options);
  }
}
