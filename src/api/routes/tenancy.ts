import { z } from "zod";
import type {
  Environment as EnvironmentRow,
  Project as ProjectRow,
  Tenant as TenantRow,
} from "../../contexts/tenancy/index.js";
import { callContext, etag, idempotent, ifMatch } from "../http-helpers.js";
import { environmentOut, projectOut, tenantOut } from "../represent.js";
import {
  Environment,
  EnvironmentCreate,
  EnvironmentPatch,
  IdempotencyHeaders,
  IfMatchHeaders,
  ListQuery,
  listOf,
  Project,
  ProjectCreate,
  Ref,
  TenancyPatch,
  Tenant,
  TenantCreate,
} from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const TenantParams = z.strictObject({ tenant: Ref });
const ProjectParams = TenantParams.extend({ project: Ref });
const EnvironmentParams = ProjectParams.extend({ environment: Ref });

/** Tenants (operators), projects and environments: synchronous CRUD with ETags. */
export function registerTenancyRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade, cursors } = deps;

  // ---------------------------------------------------------------- tenants
  app.get(
    "/tenants",
    {
      schema: {
        summary: "List tenants (operators)",
        tags: ["tenancy"],
        querystring: ListQuery,
        response: { 200: listOf(Tenant, "TenantList"), ...problems(400, 403) },
      },
    },
    async (request) => {
      const page = await facade.listTenants(
        callContext(request),
        cursors.options(request, request.query),
      );
      return { items: page.items.map(tenantOut), nextCursor: cursors.next(request, page.next) };
    },
  );

  app.post(
    "/tenants",
    {
      schema: {
        summary: "Create a tenant (operators)",
        tags: ["tenancy"],
        headers: IdempotencyHeaders,
        body: TenantCreate,
        response: { 201: Tenant, ...problems(400, 403, 409, 422) },
      },
    },
    async (request, reply) =>
      idempotent<TenantRow>(
        request,
        reply,
        facade.idempotency,
        deps.idempotencyTtlHours,
        (hooks) => facade.createTenant(callContext(request), request.body, hooks),
        (tenant) => ({
          statusCode: 201,
          body: tenantOut(tenant),
          location: `/api/v1/tenants/${tenant.id}`,
          etag: etag(tenant.version),
        }),
      ),
  );

  app.get(
    "/tenants/:tenant",
    {
      schema: {
        summary: "Get a tenant",
        tags: ["tenancy"],
        params: TenantParams,
        response: { 200: Tenant, ...problems(404) },
      },
    },
    async (request, reply) => {
      const tenant = await facade.getTenant(callContext(request), request.params.tenant);
      return reply.header("etag", etag(tenant.version)).send(tenantOut(tenant));
    },
  );

  app.patch(
    "/tenants/:tenant",
    {
      schema: {
        summary: "Change a tenant's display name or labels (operators)",
        tags: ["tenancy"],
        params: TenantParams,
        headers: IfMatchHeaders,
        body: TenancyPatch,
        response: { 200: Tenant, ...problems(400, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const tenant = await facade.updateTenant(
        callContext(request),
        request.params.tenant,
        ifMatch(request),
        request.body,
      );
      return reply.header("etag", etag(tenant.version)).send(tenantOut(tenant));
    },
  );

  app.delete(
    "/tenants/:tenant",
    {
      schema: {
        summary: "Delete a tenant without projects (operators)",
        tags: ["tenancy"],
        params: TenantParams,
        headers: IfMatchHeaders,
        response: { 204: z.null(), ...problems(400, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      await facade.deleteTenant(callContext(request), request.params.tenant, ifMatch(request));
      return reply.code(204).send(null);
    },
  );

  // ---------------------------------------------------------------- projects
  app.get(
    "/tenants/:tenant/projects",
    {
      schema: {
        summary: "List the tenant's projects",
        tags: ["tenancy"],
        params: TenantParams,
        querystring: ListQuery,
        response: { 200: listOf(Project, "ProjectList"), ...problems(400, 404) },
      },
    },
    async (request) => {
      const page = await facade.listProjects(
        callContext(request),
        request.params.tenant,
        cursors.options(request, request.query),
      );
      return { items: page.items.map(projectOut), nextCursor: cursors.next(request, page.next) };
    },
  );

  app.post(
    "/tenants/:tenant/projects",
    {
      schema: {
        summary: "Create a project",
        tags: ["tenancy"],
        params: TenantParams,
        headers: IdempotencyHeaders,
        body: ProjectCreate,
        response: { 201: Project, ...problems(400, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      idempotent<ProjectRow>(
        request,
        reply,
        facade.idempotency,
        deps.idempotencyTtlHours,
        (hooks) =>
          facade.createProject(callContext(request), request.params.tenant, request.body, hooks),
        (project) => ({
          statusCode: 201,
          body: projectOut(project),
          location: `/api/v1/tenants/${project.tenantId}/projects/${project.id}`,
          etag: etag(project.version),
        }),
      ),
  );

  app.get(
    "/tenants/:tenant/projects/:project",
    {
      schema: {
        summary: "Get a project",
        tags: ["tenancy"],
        params: ProjectParams,
        response: { 200: Project, ...problems(404) },
      },
    },
    async (request, reply) => {
      const project = await facade.getProject(
        callContext(request),
        request.params.tenant,
        request.params.project,
      );
      return reply.header("etag", etag(project.version)).send(projectOut(project));
    },
  );

  app.patch(
    "/tenants/:tenant/projects/:project",
    {
      schema: {
        summary: "Change a project's display name or labels",
        tags: ["tenancy"],
        params: ProjectParams,
        headers: IfMatchHeaders,
        body: TenancyPatch,
        response: { 200: Project, ...problems(400, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const { tenant, project } = request.params;
      const updated = await facade.updateProject(
        callContext(request),
        tenant,
        project,
        ifMatch(request),
        request.body,
      );
      return reply.header("etag", etag(updated.version)).send(projectOut(updated));
    },
  );

  app.delete(
    "/tenants/:tenant/projects/:project",
    {
      schema: {
        summary: "Delete a project without environments",
        tags: ["tenancy"],
        params: ProjectParams,
        headers: IfMatchHeaders,
        response: { 204: z.null(), ...problems(400, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      await facade.deleteProject(
        callContext(request),
        request.params.tenant,
        request.params.project,
        ifMatch(request),
      );
      return reply.code(204).send(null);
    },
  );

  // ---------------------------------------------------------------- environments
  app.get(
    "/tenants/:tenant/projects/:project/environments",
    {
      schema: {
        summary: "List the project's environments",
        tags: ["tenancy"],
        params: ProjectParams,
        querystring: ListQuery,
        response: { 200: listOf(Environment, "EnvironmentList"), ...problems(400, 404) },
      },
    },
    async (request) => {
      const { tenant, project } = request.params;
      const page = await facade.listEnvironments(
        callContext(request),
        tenant,
        project,
        cursors.options(request, request.query),
      );
      return {
        items: page.items.map(environmentOut),
        nextCursor: cursors.next(request, page.next),
      };
    },
  );

  app.post(
    "/tenants/:tenant/projects/:project/environments",
    {
      schema: {
        summary: "Create an environment in a datacenter",
        tags: ["tenancy"],
        params: ProjectParams,
        headers: IdempotencyHeaders,
        body: EnvironmentCreate,
        response: { 201: Environment, ...problems(400, 403, 404, 409, 422) },
      },
    },
    async (request, reply) =>
      idempotent<EnvironmentRow>(
        request,
        reply,
        facade.idempotency,
        deps.idempotencyTtlHours,
        (hooks) =>
          facade.createEnvironment(
            callContext(request),
            request.params.tenant,
            request.params.project,
            request.body,
            hooks,
          ),
        (env) => ({
          statusCode: 201,
          body: environmentOut(env),
          location: `/api/v1/tenants/${env.tenantId}/projects/${env.projectId}/environments/${env.id}`,
          etag: etag(env.version),
        }),
      ),
  );

  app.get(
    "/tenants/:tenant/projects/:project/environments/:environment",
    {
      schema: {
        summary: "Get an environment",
        tags: ["tenancy"],
        params: EnvironmentParams,
        response: { 200: Environment, ...problems(404) },
      },
    },
    async (request, reply) => {
      const { tenant, project, environment } = request.params;
      const env = await facade.getEnvironment(callContext(request), tenant, project, environment);
      return reply.header("etag", etag(env.version)).send(environmentOut(env));
    },
  );

  app.patch(
    "/tenants/:tenant/projects/:project/environments/:environment",
    {
      schema: {
        summary: "Change an environment's labels",
        tags: ["tenancy"],
        params: EnvironmentParams,
        headers: IfMatchHeaders,
        body: EnvironmentPatch,
        response: { 200: Environment, ...problems(400, 403, 404, 412, 428) },
      },
    },
    async (request, reply) => {
      const { tenant, project, environment } = request.params;
      const env = await facade.updateEnvironment(
        callContext(request),
        tenant,
        project,
        environment,
        ifMatch(request),
        request.body,
      );
      return reply.header("etag", etag(env.version)).send(environmentOut(env));
    },
  );

  app.delete(
    "/tenants/:tenant/projects/:project/environments/:environment",
    {
      schema: {
        summary: "Delete an empty environment",
        tags: ["tenancy"],
        params: EnvironmentParams,
        headers: IfMatchHeaders,
        response: { 204: z.null(), ...problems(400, 403, 404, 409, 412, 428) },
      },
    },
    async (request, reply) => {
      const { tenant, project, environment } = request.params;
      await facade.deleteEnvironment(
        callContext(request),
        tenant,
        project,
        environment,
        ifMatch(request),
      );
      return reply.code(204).send(null);
    },
  );
}
