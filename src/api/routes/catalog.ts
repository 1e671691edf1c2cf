import { z } from "zod";
import { readContext } from "../http-helpers.js";
import { audienceOf, catalogOut, platformObjectOut } from "../represent.js";
import {
  CATALOG_KINDS,
  CATALOG_SCHEMAS,
  type CatalogPath,
  CatalogListQuery,
  CatalogPoolQuery,
  listOf,
  PLATFORM_KINDS,
  type PlatformKindPath,
  PlatformObject,
  Ref,
} from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const PlatformKindParam = z
  .enum(Object.keys(PLATFORM_KINDS) as [PlatformKindPath, ...PlatformKindPath[]])
  .meta({ description: "A platform kind, by its plural as `kubectl get` takes it." });

const PlatformParams = z.strictObject({ kind: PlatformKindParam });
const PlatformObjectParams = PlatformParams.extend({
  object: Ref.meta({ description: "The platform object's name.", example: "dc1" }),
});

/**
 * The catalog: the platform objects a tenant may name in a request (datacenters, machine
 * classes, network pools, server pools) with their conditions and what is free of them now,
 * readable by every caller; and every platform object with its full status under `/platform`
 * (operators). Read-only: the platform configuration changes in Git.
 */
export function registerCatalogRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade, cursors } = deps;

  for (const path of Object.keys(CATALOG_KINDS) as CatalogPath[]) {
    const { kind, param, example } = CATALOG_KINDS[path];
    const schema = CATALOG_SCHEMAS[path];
    const querystring = path === "datacenters" ? CatalogListQuery : CatalogPoolQuery;
    const Params = z.strictObject({
      [param]: Ref.meta({ description: `The ${kind}'s name.`, example }),
    });

    app.get(
      `/${path}`,
      {
        schema: {
          summary: `List the platform's ${path.replace("-", " ")}`,
          description: `Every ${kind} of the platform, by name, with its conditions and what is free of it now. Readable by every caller.`,
          tags: ["catalog"],
          querystring,
          response: { 200: listOf(schema, `${kind}List`), ...problems(400) },
        },
      },
      async (request) => {
        const query: {
          limit: number;
          cursor?: string | undefined;
          datacenter?: string | undefined;
        } = request.query;
        const page = await facade.listCatalog(readContext(request), kind, {
          limit: query.limit,
          after: cursors.after(request, query.cursor),
          datacenter: query.datacenter,
        });
        const audience = audienceOf(request.principal);
        return {
          items: page.items.map((e) => catalogOut(e, audience)),
          nextCursor: cursors.next(request, page.next),
        };
      },
    );

    app.get(
      `/${path}/:${param}`,
      {
        schema: {
          summary: `Get a ${kind} with what is free of it`,
          tags: ["catalog"],
          params: Params,
          response: { 200: schema, ...problems(404) },
        },
      },
      async (request) => {
        const params: Record<string, string> = request.params;
        const name = params[param] ?? "";
        const entry = await facade.getCatalog(readContext(request), kind, name);
        return catalogOut(entry, audienceOf(request.principal));
      },
    );
  }

  app.get(
    "/platform/:kind",
    {
      schema: {
        summary: "List the platform objects of a kind, with full status (operators)",
        description:
          "Every object of the kind as applied from Git (or the configuration directory), with the spec as applied and the status as the platform controller recorded it.",
        tags: ["catalog"],
        params: PlatformParams,
        querystring: CatalogListQuery,
        response: { 200: listOf(PlatformObject, "PlatformObjectList"), ...problems(400, 403) },
      },
    },
    async (request) => {
      const page = await facade.listPlatform(
        readContext(request),
        PLATFORM_KINDS[request.params.kind],
        { limit: request.query.limit, after: cursors.after(request, request.query.cursor) },
      );
      return {
        items: page.items.map(platformObjectOut),
        nextCursor: cursors.next(request, page.next),
      };
    },
  );

  app.get(
    "/platform/:kind/:object",
    {
      schema: {
        summary: "Get a platform object with full status (operators)",
        tags: ["catalog"],
        params: PlatformObjectParams,
        response: { 200: PlatformObject, ...problems(403, 404) },
      },
    },
    async (request) =>
      platformObjectOut(
        await facade.getPlatform(
          readContext(request),
          PLATFORM_KINDS[request.params.kind],
          request.params.object,
        ),
      ),
  );
}
