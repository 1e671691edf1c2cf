import { z } from "zod";
import type { ResourceChange } from "../facade.js";
import { callContext, etag, idempotent, ifMatch, readContext } from "../http-helpers.js";
import { audienceOf, resourceJson, resourceOut, taskHref, taskOut } from "../represent.js";
import {
  IdempotencyHeaders,
  IfMatchHeaders,
  KINDS,
  type KindPath,
  ListQuery,
  listOf,
  RESOURCE_SCHEMAS,
  Ref,
  Task,
} from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const EnvironmentParams = z.strictObject({ tenant: Ref, project: Ref, environment: Ref });
const ResourceParams = EnvironmentParams.extend({ name: Ref });

/** `?dryRun=All`, as Kubernetes spells it: every check of the write, nothing kept. */
const WriteQuery = z.strictObject({
  dryRun: z.literal("All", { error: 'the only dry run is "All"' }).optional().meta({
    description:
      "`All`: check the request as a write would — schema, references, name, version, quota — and answer 200 with the resource as it would be, writing nothing (no task, no audit record, no charge). An Idempotency-Key is ignored.",
  }),
});

const accepted = (change: ResourceChange) => ({
  statusCode: 202,
  body: taskOut(change.task),
  location: taskHref(change.task),
});

/**
 * Networks, servers, clusters and buckets inside an environment. Reads are synchronous; every
 * create, change and delete answers 202 with the task that carries it out and a `Location` to
 * follow it.
 */
export function registerResourceRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade, cursors } = deps;
  for (const path of Object.keys(KINDS) as KindPath[]) {
    const { kind, title } = KINDS[path];
    const schemas = RESOURCE_SCHEMAS[path];
    const base = `/tenants/:tenant/projects/:project/environments/:environment/${path}`;
    const resourceKind = kind;

    app.get(
      base,
      {
        schema: {
          summary: `List ${path}`,
          tags: [path],
          params: EnvironmentParams,
          querystring: ListQuery,
          response: { 200: listOf(schemas.resource, `${title}List`), ...problems(400, 404) },
        },
      },
      async (request) => {
        const page = await facade.listResources(
          callContext(request),
          request.params,
          resourceKind,
          cursors.options(request, request.query),
        );
        return {
          items: page.items.map((r) => resourceOut(r, audienceOf(request.principal))) as never[],
          nextCursor: cursors.next(request, page.next),
        };
      },
    );

    app.post(
      base,
      {
        schema: {
          summary: `Request a ${kind}`,
          description: `Records the request and answers 202 with the task that builds the ${kind}; follow the task at its Location.`,
          tags: [path],
          params: EnvironmentParams,
          querystring: WriteQuery,
          headers: IdempotencyHeaders,
          body: schemas.create,
          response: {
            200: schemas.resource.meta({ description: "`dryRun=All`: what it would be." }),
            202: Task,
            ...problems(400, 403, 404, 409, 422),
          },
        },
      },
      async (request, reply) => {
        if (request.query.dryRun) {
          const change = await facade.createResource(
            callContext(request),
            request.params,
            resourceKind,
            request.body,
            undefined,
            { dryRun: true },
          );
          return reply
            .code(200)
            .send(resourceOut(change.resource, audienceOf(request.principal)) as never);
        }
        return idempotent<ResourceChange>(
          request,
          reply,
          facade.idempotency,
          deps.idempotencyTtlHours,
          (hooks) =>
            facade.createResource(
              callContext(request),
              request.params,
              resourceKind,
              request.body,
              hooks,
            ),
          accepted,
        );
      },
    );

    app.get(
      `${base}/:name`,
      {
        schema: {
          summary: `Get a ${kind} with its observed status`,
          tags: [path],
          params: ResourceParams,
          response: { 200: schemas.resource, ...problems(404) },
        },
      },
      async (request, reply) => {
        const { name, ...refs } = request.params;
        const resource = await facade.getResource(readContext(request), refs, resourceKind, name);
        // The hottest read: its representation is built field by field to the schema's type by
        // resourceOut, so it is written as JSON at once rather than checked by the schema again
        // (which cost more than the rest of the representation), once per version of the row.
        return reply
          .header("etag", etag(resource.version))
          .type("application/json; charset=utf-8")
          .send(resourceJson(resource, audienceOf(request.principal)) as never);
      },
    );

    app.patch(
      `${base}/:name`,
      {
        schema: {
          summary: `Change a ${kind}'s spec or labels`,
          description:
            "`spec`, when present, replaces the whole spec. Answers 202 with the task that applies it.",
          tags: [path],
          params: ResourceParams,
          querystring: WriteQuery,
          headers: IfMatchHeaders,
          body: schemas.patch,
          // 422 `invalid-reference`: the new spec names what the platform does not have.
          response: {
            200: schemas.resource.meta({ description: "`dryRun=All`: what it would be." }),
            202: Task,
            ...problems(400, 403, 404, 409, 412, 422, 428),
          },
        },
      },
      async (request, reply) => {
        const { name, ...refs } = request.params;
        const body = request.body as {
          labels?: Record<string, string>;
          spec?: Record<string, unknown>;
        };
        const change = await facade.updateResource(
          callContext(request),
          refs,
          resourceKind,
          name,
          ifMatch(request),
          body,
          { dryRun: request.query.dryRun !== undefined },
        );
        if (request.query.dryRun)
          return reply
            .code(200)
            .send(resourceOut(change.resource, audienceOf(request.principal)) as never);
        const out = accepted(change);
        return reply.code(202).header("location", out.location).send(out.body);
      },
    );

    app.delete(
      `${base}/:name`,
      {
        schema: {
          summary: `Delete a ${kind}`,
          description:
            "Answers 202 with the task that tears it down; it disappears once the domain service confirms.",
          tags: [path],
          params: ResourceParams,
          headers: IfMatchHeaders,
          response: { 202: Task, ...problems(400, 403, 404, 409, 412, 428) },
        },
      },
      async (request, reply) => {
        const { name, ...refs } = request.params;
        const change = await facade.deleteResource(
          callContext(request),
          refs,
          resourceKind,
          name,
          ifMatch(request),
        );
        const out = accepted(change);
        return reply.code(202).header("location", out.location).send(out.body);
      },
    );
  }
}
