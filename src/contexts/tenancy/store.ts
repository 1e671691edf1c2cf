import { and, asc, eq, gt, sql } from "drizzle-orm";
import {
  ContextRole,
  ContextStore,
  type Database,
  labelCondition,
  mapUniqueViolation,
  type Tx,
  type Unlisten,
} from "../../db/index.js";
import {
  AlreadyExistsError,
  InUseError,
  type ListOptions,
  NotFoundError,
  type Page,
  toPage,
} from "../../kernel/index.js";
import { environments, projects, tenants } from "./schema.js";

export type Tenant = typeof tenants.$inferSelect;
export type Project = typeof projects.$inferSelect;
export type Environment = typeof environments.$inferSelect;

/**
 * The channel a deletion of a tenant, project or environment is announced on (`tenant:<id>`,
 * `project:<id>`, `environment:<id>`), at its commit: processes that remember what an id names
 * (the API's scope) forget it.
 */
export const TENANCY_CHANNEL = "dv_tenancy";

/** A deletion announced on {@link TENANCY_CHANNEL}. */
export interface TenancyDeletion {
  readonly kind: "tenant" | "project" | "environment";
  readonly id: string;
}

/** The deletion a {@link TENANCY_CHANNEL} payload announces; undefined for anything else. */
export function parseTenancyDeletion(payload: string): TenancyDeletion | undefined {
  const [kind, id] = payload.split(":");
  return (kind === "tenant" || kind === "project" || kind === "environment") && id
    ? { kind, id }
    : undefined;
}

/** Fields of a tenancy object a caller may change. */
export interface MetadataPatch {
  readonly displayName?: string;
  readonly labels?: Record<string, string>;
}

/**
 * The tenancy context: tenants, projects, environments. Names are DNS labels, unique within
 * their parent; every change goes through optimistic concurrency on `version`.
 */
export class TenancyStore extends ContextStore {
  readonly #newId: () => string;

  constructor(db: Database, newId: () => string) {
    super(db, ContextRole.tenancy);
    this.#newId = newId;
  }

  /**
   * Calls `handler` with every deletion of a tenant, project or environment, in any process, once committed
   * (`LISTEN` on {@link TENANCY_CHANNEL}), until the returned function is called.
   *
   * @throws when the database refuses `LISTEN` (a read-only replica).
   */
  followDeletions(handler: (deletion: TenancyDeletion) => void): Promise<Unlisten> {
    return this.db.listen(TENANCY_CHANNEL, (payload) => {
      const deletion = parseTenancyDeletion(payload);
      if (deletion) handler(deletion);
    });
  }

  /** @throws {AlreadyExistsError} when the name is taken. */
  createTenant(
    tx: Tx,
    input: { name: string; displayName?: string; labels?: Record<string, string> },
  ): Promise<Tenant> {
    return this.inTx(tx, (q) =>
      mapUniqueViolation(
        async () => {
          const [row] = await q
            .insert(tenants)
            .values({
              id: this.#newId(),
              name: input.name,
              displayName: input.displayName ?? "",
              labels: input.labels ?? {},
            })
            .returning();
          return row as Tenant;
        },
        ["tenants_name_unique"],
        (_c, cause) => new AlreadyExistsError("tenant", input.name, "the platform", { cause }),
      ),
    );
  }

  /** @throws {NotFoundError} */
  async getTenant(id: string, tx?: Tx): Promise<Tenant> {
    const [row] = await this.reading(tx, (q) => q.select().from(tenants).where(eq(tenants.id, id)));
    if (!row) throw new NotFoundError("tenant", id);
    return row;
  }

  /** Looks a tenant up by name; `undefined` when there is none. */
  async findTenantByName(name: string, tx?: Tx): Promise<Tenant | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q.select().from(tenants).where(eq(tenants.name, name)),
    );
    return row;
  }

  async listTenants(options: ListOptions, tx?: Tx): Promise<Page<Tenant>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(tenants)
        .where(
          and(
            options.after ? gt(tenants.id, options.after) : undefined,
            labelCondition(tenants.labels, options.labels ?? []),
          ),
        )
        .orderBy(asc(tenants.id))
        .limit(options.limit + 1),
    );
    return toPage(rows, options.limit);
  }

  /** @throws {NotFoundError} @throws {VersionConflictError} when `expectedVersion` is stale. */
  updateTenant(tx: Tx, id: string, expectedVersion: number, patch: MetadataPatch): Promise<Tenant> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(tenants)
        .set({ ...patch, version: sql`${tenants.version} + 1`, updatedAt: sql`now()` })
        .where(and(eq(tenants.id, id), eq(tenants.version, expectedVersion)))
        .returning();
      if (row) return row;
      throw await this.missOrConflict(q, tenants, "tenant", id, expectedVersion);
    });
  }

  /** @throws {NotFoundError} @throws {VersionConflictError} @throws {InUseError} while it has projects. */
  deleteTenant(tx: Tx, id: string, expectedVersion: number): Promise<void> {
    return this.inTx(tx, async (q) => {
      const children = await q
        .select({ name: projects.name })
        .from(projects)
        .where(eq(projects.tenantId, id))
        .limit(5);
      if (children.length > 0)
        throw new InUseError(
          "tenant",
          id,
          children.map((p) => `project ${p.name}`),
        );
      const [row] = await q
        .delete(tenants)
        .where(and(eq(tenants.id, id), eq(tenants.version, expectedVersion)))
        .returning({ id: tenants.id });
      if (!row) throw await this.missOrConflict(q, tenants, "tenant", id, expectedVersion);
      await q.execute(sql`SELECT pg_notify(${TENANCY_CHANNEL}, ${`tenant:${id}`})`);
    });
  }

  /** @throws {AlreadyExistsError} @throws {NotFoundError} when the tenant does not exist. */
  createProject(
    tx: Tx,
    input: {
      tenantId: string;
      name: string;
      displayName?: string;
      labels?: Record<string, string>;
    },
  ): Promise<Project> {
    return this.inTx(tx, async (q) => {
      const [tenant] = await q
        .select({ id: tenants.id, name: tenants.name })
        .from(tenants)
        .where(eq(tenants.id, input.tenantId));
      if (!tenant) throw new NotFoundError("tenant", input.tenantId);
      return mapUniqueViolation(
        async () => {
          const [row] = await q
            .insert(projects)
            .values({
              id: this.#newId(),
              tenantId: input.tenantId,
              name: input.name,
              displayName: input.displayName ?? "",
              labels: input.labels ?? {},
            })
            .returning();
          return row as Project;
        },
        ["projects_tenant_name"],
        (_c, cause) =>
          new AlreadyExistsError("project", input.name, `tenant ${tenant.name}`, { cause }),
      );
    });
  }

  /** @throws {NotFoundError} also when the project belongs to another tenant. */
  async getProject(tenantId: string, id: string, tx?: Tx): Promise<Project> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(projects)
        .where(and(eq(projects.id, id), eq(projects.tenantId, tenantId))),
    );
    if (!row) throw new NotFoundError("project", id);
    return row;
  }

  /** A tenant's project by name: one indexed lookup (`projects_tenant_name`). */
  async findProjectByName(tenantId: string, name: string, tx?: Tx): Promise<Project | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(projects)
        .where(and(eq(projects.tenantId, tenantId), eq(projects.name, name))),
    );
    return row;
  }

  async listProjects(tenantId: string, options: ListOptions, tx?: Tx): Promise<Page<Project>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(projects)
        .where(
          and(
            eq(projects.tenantId, tenantId),
            options.after ? gt(projects.id, options.after) : undefined,
            labelCondition(projects.labels, options.labels ?? []),
          ),
        )
        .orderBy(asc(projects.id))
        .limit(options.limit + 1),
    );
    return toPage(rows, options.limit);
  }

  /** @throws {NotFoundError} @throws {VersionConflictError} */
  updateProject(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
    patch: MetadataPatch,
  ): Promise<Project> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(projects)
        .set({ ...patch, version: sql`${projects.version} + 1`, updatedAt: sql`now()` })
        .where(
          and(
            eq(projects.id, id),
            eq(projects.tenantId, tenantId),
            eq(projects.version, expectedVersion),
          ),
        )
        .returning();
      if (row) return row;
      throw await this.missOrConflict(
        q,
        projects,
        "project",
        id,
        expectedVersion,
        eq(projects.tenantId, tenantId),
      );
    });
  }

  /** @throws {NotFoundError} @throws {VersionConflictError} @throws {InUseError} while it has environments. */
  deleteProject(tx: Tx, tenantId: string, id: string, expectedVersion: number): Promise<void> {
    return this.inTx(tx, async (q) => {
      const children = await q
        .select({ name: environments.name })
        .from(environments)
        .where(and(eq(environments.projectId, id), eq(environments.tenantId, tenantId)))
        .limit(5);
      if (children.length > 0)
        throw new InUseError(
          "project",
          id,
          children.map((e) => `environment ${e.name}`),
        );
      const [row] = await q
        .delete(projects)
        .where(
          and(
            eq(projects.id, id),
            eq(projects.tenantId, tenantId),
            eq(projects.version, expectedVersion),
          ),
        )
        .returning({ id: projects.id });
      if (!row) {
        throw await this.missOrConflict(
          q,
          projects,
          "project",
          id,
          expectedVersion,
          eq(projects.tenantId, tenantId),
        );
      }
      await q.execute(sql`SELECT pg_notify(${TENANCY_CHANNEL}, ${`project:${id}`})`);
    });
  }

  /** @throws {AlreadyExistsError} @throws {NotFoundError} when the project is not the tenant's. */
  createEnvironment(
    tx: Tx,
    input: {
      tenantId: string;
      projectId: string;
      name: string;
      datacenterId: string;
      labels?: Record<string, string>;
    },
  ): Promise<Environment> {
    return this.inTx(tx, async (q) => {
      const [project] = await q
        .select({ id: projects.id, name: projects.name })
        .from(projects)
        .where(and(eq(projects.id, input.projectId), eq(projects.tenantId, input.tenantId)));
      if (!project) throw new NotFoundError("project", input.projectId);
      return mapUniqueViolation(
        async () => {
          const [row] = await q
            .insert(environments)
            .values({
              id: this.#newId(),
              tenantId: input.tenantId,
              projectId: input.projectId,
              name: input.name,
              datacenterId: input.datacenterId,
              labels: input.labels ?? {},
            })
            .returning();
          return row as Environment;
        },
        ["environments_project_name"],
        (_c, cause) =>
          new AlreadyExistsError("environment", input.name, `project ${project.name}`, { cause }),
      );
    });
  }

  /** @throws {NotFoundError} also when the environment belongs to another tenant. */
  async getEnvironment(tenantId: string, id: string, tx?: Tx): Promise<Environment> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(environments)
        .where(and(eq(environments.id, id), eq(environments.tenantId, tenantId))),
    );
    if (!row) throw new NotFoundError("environment", id);
    return row;
  }

  /** A project's environment by name: one indexed lookup (`environments_project_name`). */
  async findEnvironmentByName(
    tenantId: string,
    projectId: string,
    name: string,
    tx?: Tx,
  ): Promise<Environment | undefined> {
    const [row] = await this.reading(tx, (q) =>
      q
        .select()
        .from(environments)
        .where(
          and(
            eq(environments.projectId, projectId),
            eq(environments.name, name),
            eq(environments.tenantId, tenantId),
          ),
        ),
    );
    return row;
  }

  async listEnvironments(
    tenantId: string,
    projectId: string,
    options: ListOptions,
    tx?: Tx,
  ): Promise<Page<Environment>> {
    const rows = await this.reading(tx, (q) =>
      q
        .select()
        .from(environments)
        .where(
          and(
            eq(environments.tenantId, tenantId),
            eq(environments.projectId, projectId),
            options.after ? gt(environments.id, options.after) : undefined,
            labelCondition(environments.labels, options.labels ?? []),
          ),
        )
        .orderBy(asc(environments.id))
        .limit(options.limit + 1),
    );
    return toPage(rows, options.limit);
  }

  /** @throws {NotFoundError} @throws {VersionConflictError} */
  updateEnvironment(
    tx: Tx,
    tenantId: string,
    id: string,
    expectedVersion: number,
    patch: { labels?: Record<string, string> },
  ): Promise<Environment> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .update(environments)
        .set({ ...patch, version: sql`${environments.version} + 1`, updatedAt: sql`now()` })
        .where(
          and(
            eq(environments.id, id),
            eq(environments.tenantId, tenantId),
            eq(environments.version, expectedVersion),
          ),
        )
        .returning();
      if (row) return row;
      throw await this.missOrConflict(
        q,
        environments,
        "environment",
        id,
        expectedVersion,
        eq(environments.tenantId, tenantId),
      );
    });
  }

  /**
   * Deletes an environment. The caller checks with the inventory context first that nothing
   * lives in it.
   *
   * @throws {NotFoundError} @throws {VersionConflictError}
   */
  deleteEnvironment(tx: Tx, tenantId: string, id: string, expectedVersion: number): Promise<void> {
    return this.inTx(tx, async (q) => {
      const [row] = await q
        .delete(environments)
        .where(
          and(
            eq(environments.id, id),
            eq(environments.tenantId, tenantId),
            eq(environments.version, expectedVersion),
          ),
        )
        .returning({ id: environments.id });
      if (!row) {
        throw await this.missOrConflict(
          q,
          environments,
          "environment",
          id,
          expectedVersion,
          eq(environments.tenantId, tenantId),
        );
      }
      await q.execute(sql`SELECT pg_notify(${TENANCY_CHANNEL}, ${`environment:${id}`})`);
    });
  }
}
