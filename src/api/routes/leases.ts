import { z } from "zod";
import { callContext } from "../http-helpers.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const Lease = z
  .object({
    shard: z.number().int().meta({
      description: "A tenant shard (0 and up), or -1: the platform controllers' leader lease.",
    }),
    holder: z.string().nullable().meta({ description: "The replica holding it, if any." }),
    fencingToken: z
      .number()
      .int()
      .meta({ description: "Incremented by every grant; writes under an older one are refused." }),
    live: z.boolean(),
    expiresInMs: z
      .number()
      .int()
      .nullable()
      .meta({ description: "Until it expires, by the database's clock (negative: expired)." }),
    acquiredAt: z.string().nullable(),
  })
  .meta({ id: "Lease" });

const LeaseOverview = z
  .object({
    leases: z.array(Lease),
    members: z.array(z.object({ holder: z.string(), datacenterId: z.string(), live: z.boolean() })),
  })
  .meta({ id: "LeaseOverview" });

/** Shard leases and controller replicas, for operators (`dv leases`). */
export function registerLeaseRoutes(app: ZodApp, deps: RouteDeps): void {
  app.get(
    "/leases",
    {
      schema: {
        summary: "Shard leases and controller replicas (operators)",
        description:
          "Who reconciles which shard, with its fencing token and time left, by the database's clock; shard -1 is the platform controllers' leader lease.",
        tags: ["operations"],
        response: { 200: LeaseOverview, ...problems(403) },
      },
    },
    async (request) => {
      const o = await deps.facade.listLeases(callContext(request));
      return {
        leases: o.leases.map((l) => ({
          shard: l.shard,
          holder: l.holder,
          fencingToken: l.token,
          live: l.live,
          expiresInMs: l.expiresInMs,
          acquiredAt: l.acquiredAt ? l.acquiredAt.toISOString() : null,
        })),
        members: o.members,
      };
    },
  );
}
