import { z } from "zod";
import type { QuotaView } from "../../contexts/inventory/index.js";
import { QUOTA_NAMES, QUOTAS } from "../../contexts/inventory/index.js";
import { callContext } from "../http-helpers.js";
import { Ref } from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const QuotaName = z.enum(QUOTA_NAMES).meta({
  description: Object.entries(QUOTAS)
    .map(([name, q]) => `\`${name}\` (per ${q.per}): ${q.description}`)
    .join(" "),
});

const Scope = z
  .string()
  .regex(/^(\*|[a-z0-9][-a-z0-9]{0,62})$/, {
    error: "a datacenter, a machine class, an environment id, or * for every scope",
  })
  .meta({ description: "A datacenter, a machine class, an environment id, or `*`." });

const Limit = z.number().int().min(0).max(1_000_000_000);

export const Quotas = z
  .object({
    kind: z.literal("Quotas"),
    tenantId: z.string(),
    limits: z
      .array(
        z.object({
          quota: QuotaName,
          scope: Scope,
          limit: Limit.nullable().meta({ description: "null: no limit." }),
          source: z.enum(["policy", "tenant", "none"]).meta({
            description:
              "`policy`: the PlatformPolicy's default; `tenant`: an operator set it for this tenant; `none`: no limit.",
          }),
        }),
      )
      .meta({
        description:
          "Every quota's limit for scopes without one of their own (`*`), then the tenant's limits for single scopes.",
      }),
    usage: z
      .array(
        z.object({
          quota: QuotaName,
          scope: Scope,
          used: z.number().int(),
          limit: Limit.nullable(),
        }),
      )
      .meta({ description: "What the tenant holds, with the limit in force there." }),
  })
  .meta({ id: "Quotas" });

export const QuotaSet = z
  .strictObject({
    limits: z
      .record(Scope, Limit)
      .refine((l) => Object.keys(l).length <= 100, { error: "at most 100 scopes" })
      .meta({
        description:
          'Limits by scope (`{"*": 32768, "dc1": 4096}`), replacing this quota\'s limits for the tenant; `{}` goes back to the platform\'s default.',
        example: { "*": 32768 },
      }),
  })
  .meta({ id: "QuotaSet" });

const TenantParams = z.strictObject({ tenant: Ref });
const QuotaParams = TenantParams.extend({ quota: QuotaName });

const out = (view: QuotaView & { tenantId: string }) => ({
  kind: "Quotas" as const,
  tenantId: view.tenantId,
  limits: view.limits,
  usage: view.usage,
});

/** A tenant's quotas: readable by the tenant, set by operators. */
export function registerQuotaRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade } = deps;

  app.get(
    "/tenants/:tenant/quotas",
    {
      schema: {
        summary: "Read the tenant's quotas and what it holds",
        tags: ["quotas"],
        params: TenantParams,
        response: { 200: Quotas, ...problems(400, 404) },
      },
    },
    async (request) => out(await facade.getQuotas(callContext(request), request.params.tenant)),
  );

  app.put(
    "/tenants/:tenant/quotas/:quota",
    {
      schema: {
        summary: "Set the tenant's limits of one quota (operators)",
        description:
          "Replaces this quota's limits for the tenant. A limit below what the tenant holds takes nothing away: new requests are refused until it holds less.",
        tags: ["quotas"],
        params: QuotaParams,
        body: QuotaSet,
        response: { 200: Quotas, ...problems(400, 403, 404) },
      },
    },
    async (request) =>
      out(
        await facade.setQuota(
          callContext(request),
          request.params.tenant,
          request.params.quota,
          request.body.limits,
        ),
      ),
  );
}
