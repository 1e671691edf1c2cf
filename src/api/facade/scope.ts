import type { AuditEntry } from "../../contexts/audit/index.js";
import type { Environment, Project, TenancyStore } from "../../contexts/tenancy/index.js";
import type { Tx, Unlisten } from "../../db/index.js";
import {
  actorOf,
  canWrite,
  ForbiddenError,
  issuedAfterCreation,
  type Principal,
} from "../../auth/index.js";
import { NotFoundError } from "../../kernel/index.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Whether a path segment is an id (the API's refs are lower-case) rather than a name. */
export const isUuid = (ref: string): boolean => UUID.test(ref);

/** Who calls and in which workflow. */
export interface CallContext {
  readonly principal: Principal;
  readonly correlationId: string;
  /** W3C trace context of the request, carried into the tasks and messages it causes. */
  readonly traceparent?: string;
}

/**
 * Hooks into the transaction of a change: `begin` runs first (claiming an idempotency key),
 * `end` last with the result (storing the response). Both commit with the change or not at all.
 */
export interface TxHooks<R> {
  begin(tx: Tx): Promise<void>;
  end(tx: Tx, result: R): Promise<void>;
}

/** Where an environment is: what a resource path needs of it, none of which ever changes. */
export interface Placement {
  readonly id: string;
  readonly projectId: string;
  readonly datacenterId: string;
}

/** Ids of the path a tenant resource lives under. */
export interface ResourcePath {
  readonly tenant: string;
  readonly project: string;
  readonly environment: string;
}

/** What never changes about a tenant or project: its name and when it was created. */
interface Named {
  readonly name: string;
  readonly createdAt: Date;
}

const named = (row: Named): Named => ({ name: row.name, createdAt: row.createdAt });

/**
 * How long this process takes an id it resolved as existing without asking again. Deletions are
 * announced (TENANCY_CHANNEL) and forgotten at once; this bounds what a lost announcement costs.
 */
export const SCOPE_CACHE_MS = 60_000;

/**
 * Bounded LRU of immutable facts (an id's name and creation time, where an environment is): ids
 * are never reused and these never change, so nothing here can go stale except a deletion, which is forgotten when it
 * is announced and in any case after {@link SCOPE_CACHE_MS}.
 */
class FactCache<T> {
  readonly #map = new Map<string, { fact: T; until: number }>();
  constructor(
    readonly now: () => Date,
    readonly maxAgeMs: number,
    readonly max = 10_000,
  ) {}
  get(id: string): T | undefined {
    const entry = this.#map.get(id);
    if (entry === undefined) return undefined;
    this.#map.delete(id);
    if (entry.until <= this.now().getTime()) return undefined;
    this.#map.set(id, entry);
    return entry.fact;
  }
  set(id: string, fact: T): void {
    this.#map.delete(id);
    this.#map.set(id, { fact, until: this.now().getTime() + this.maxAgeMs });
    if (this.#map.size > this.max) this.#map.delete(this.#map.keys().next().value as string);
  }
  delete(id: string): void {
    this.#map.delete(id);
  }
}

/**
 * Whether tenant `id`, which exists as `tenant`, is the one the principal's token names: by id,
 * or by name when it existed at the token's `iat` — a tenant created later under the same name
 * (the old one deleted) is not the token's, so a token never inherits its newcomer.
 */
function claims(principal: Principal, id: string, tenant: Named): boolean {
  const claim = principal.tenant;
  if (claim === undefined) return false;
  if (claim === id) return true;
  if (isUuid(claim)) return false;
  return tenant.name === claim && issuedAfterCreation(principal, tenant.createdAt);
}

/**
 * Who may see what: resolves the tenant, project and environment a request names (by id or by
 * name) within the caller's token — everything outside the caller's tenant (or project, for a
 * project-scoped token) answers {@link NotFoundError}, exactly as if it did not exist.
 */
export class Scope {
  readonly #tenancy: TenancyStore;
  readonly #now: () => Date;
  /**
   * Tenant names resolved for rate-limit keys (`claimedTenantId` with `maxAgeMs`), misses too:
   * a few seconds stale at most, and never used to decide what a request may see or do.
   */
  readonly #claims = new Map<
    string,
    { tenant: Named | undefined; id: string | undefined; until: number }
  >();
  readonly #tenantNames: FactCache<Named>;
  readonly #projectNames: FactCache<Named>;
  readonly #placements: FactCache<Placement & { readonly tenantId: string }>;

  constructor(tenancy: TenancyStore, now: () => Date, cacheMs = SCOPE_CACHE_MS) {
    this.#tenancy = tenancy;
    this.#now = now;
    this.#tenantNames = new FactCache(now, cacheMs);
    this.#projectNames = new FactCache(now, cacheMs);
    this.#placements = new FactCache(now, cacheMs);
  }

  /**
   * Forgets every tenant and project deleted by any process as soon as the deletion is
   * announced, until the returned function is called.
   *
   * @throws when the database refuses `LISTEN` (a read-only replica): deleted ids are then taken
   * as existing for up to {@link SCOPE_CACHE_MS}.
   */
  follow(): Promise<Unlisten> {
    return this.#tenancy.followDeletions((deletion) => {
      if (deletion.kind === "tenant") this.forgetTenant(deletion.id);
      else if (deletion.kind === "project") this.forgetProject(deletion.id);
      else this.forgetEnvironment(deletion.id);
    });
  }

  async #tenantName(id: string): Promise<Named> {
    const cached = this.#tenantNames.get(id);
    if (cached !== undefined) return cached;
    const tenant = named(await this.#tenancy.getTenant(id));
    this.#tenantNames.set(id, tenant);
    return tenant;
  }

  async #projectName(tenantId: string, id: string): Promise<Named> {
    const cached = this.#projectNames.get(id);
    if (cached !== undefined) return cached;
    const project = named(await this.#tenancy.getProject(tenantId, id));
    this.#projectNames.set(id, project);
    return project;
  }

  /**
   * Whether tenant `id` is the one the principal's token names: by id, or by name when it
   * existed at the token's `iat` — a tenant created later under the same name (the old one
   * deleted) is not the token's, so a token never inherits its newcomer.
   */
  async #isClaimedTenant(principal: Principal, id: string): Promise<boolean> {
    const claim = principal.tenant;
    if (claim === undefined) return false;
    if (claim === id) return true;
    if (isUuid(claim)) return false;
    const tenant = await this.#tenantName(id).catch(() => undefined);
    return tenant !== undefined && claims(principal, id, tenant);
  }

  /** Whether project `id` is within the principal's project scope (by id, or by name as above). */
  async #inProjectScope(principal: Principal, tenantId: string, id: string): Promise<boolean> {
    const scope = principal.project;
    if (scope === undefined || scope === id) return true;
    if (isUuid(scope)) return false;
    const project = await this.#projectName(tenantId, id).catch(() => undefined);
    return (
      project !== undefined &&
      project.name === scope &&
      issuedAfterCreation(principal, project.createdAt)
    );
  }

  /**
   * The id of the tenant a tenant role's token means, when that tenant exists for the token (see
   * {@link Scope.tenantId}); undefined for operators and for a token whose tenant is gone or
   * younger than the token. One bucket of the rate limiter, and one scope of Idempotency-Keys,
   * per tenant, whether its tokens name it by id or by name.
   */
  async claimedTenantId(
    principal: Principal,
    options: { maxAgeMs?: number } = {},
  ): Promise<string | undefined> {
    const claim = principal.tenant;
    if (principal.role === "operator" || claim === undefined) return undefined;
    // Ids are never reused: an id claim means that tenant, or nothing at all.
    if (isUuid(claim)) return claim;
    const maxAgeMs = options.maxAgeMs ?? 0;
    const now = this.#now().getTime();
    let tenant = maxAgeMs > 0 ? this.#claims.get(claim) : undefined;
    if (!tenant || tenant.until <= now) {
      const row = await this.#tenancy.findTenantByName(claim);
      tenant = { tenant: row ? named(row) : undefined, id: row?.id, until: now + maxAgeMs };
      if (row) this.#tenantNames.set(row.id, named(row));
      if (maxAgeMs > 0) {
        this.#claims.delete(claim);
        this.#claims.set(claim, tenant);
        if (this.#claims.size > 10_000)
          this.#claims.delete(this.#claims.keys().next().value as string);
      }
    }
    if (!tenant.tenant || !issuedAfterCreation(principal, tenant.tenant.createdAt))
      return undefined;
    return tenant.id;
  }

  /**
   * The id of the tenant `ref` (id or name) names, if the caller may see it.
   *
   * @throws {NotFoundError} when it does not exist or belongs to someone else.
   */
  async tenantId(ctx: CallContext, ref: string): Promise<string> {
    // The common case, answered from memory: an id this process resolved, that the caller may see.
    if (isUuid(ref)) {
      const known = this.#tenantNames.get(ref);
      if (
        known !== undefined &&
        (ctx.principal.role === "operator" || claims(ctx.principal, ref, known))
      )
        return ref;
    }
    let id: string;
    if (isUuid(ref)) {
      id = ref;
    } else {
      const tenant = await this.#tenancy.findTenantByName(ref);
      if (!tenant) throw new NotFoundError("tenant", ref);
      this.#tenantNames.set(tenant.id, named(tenant));
      id = tenant.id;
    }
    // A tenant-scoped caller is compared with its claim before anything is read.
    if (ctx.principal.role !== "operator" && !(await this.#isClaimedTenant(ctx.principal, id))) {
      throw new NotFoundError("tenant", ref);
    }
    await this.#tenantName(id).catch((err: unknown) => {
      throw err instanceof NotFoundError ? new NotFoundError("tenant", ref) : err;
    });
    return id;
  }

  /**
   * The id of project `ref` of the tenant, if the caller may see it.
   *
   * @throws {NotFoundError}
   */
  async projectId(
    ctx: CallContext,
    tenantId: string,
    ref: string,
    mustExist = true,
  ): Promise<string> {
    let id: string;
    if (isUuid(ref)) {
      id = ref;
      if (mustExist) await this.#projectName(tenantId, id);
    } else {
      const found = await this.#findProjectByName(tenantId, ref);
      id = found.id;
    }
    if (!(await this.#inProjectScope(ctx.principal, tenantId, id))) {
      throw new NotFoundError("project", ref);
    }
    return id;
  }

  async #findProjectByName(tenantId: string, name: string): Promise<Project> {
    const match = await this.#tenancy.findProjectByName(tenantId, name);
    if (!match) throw new NotFoundError("project", name);
    this.#projectNames.set(match.id, named(match));
    return match;
  }

  /**
   * The environment `ref` of the project, if the caller may see it.
   *
   * @throws {NotFoundError}
   */
  async environment(
    ctx: CallContext,
    tenantId: string,
    projectId: string,
    ref: string,
  ): Promise<Environment> {
    if (isUuid(ref)) {
      const env = await this.#tenancy.getEnvironment(tenantId, ref);
      if (env.projectId !== projectId) throw new NotFoundError("environment", ref);
      return env;
    }
    const match = await this.#tenancy.findEnvironmentByName(tenantId, projectId, ref);
    if (!match) throw new NotFoundError("environment", ref);
    return match;
  }

  /**
   * Resolves a resource path, checking the caller may see every step. The environment's place is
   * remembered by id (it never changes; a deletion is forgotten when announced): a create or read
   * by ids asks the database nothing for its path.
   */
  async path(
    ctx: CallContext,
    refs: ResourcePath,
  ): Promise<{ tenantId: string; projectId: string; environment: Placement }> {
    const tenantId = await this.tenantId(ctx, refs.tenant);
    const projectId = await this.projectId(ctx, tenantId, refs.project);
    const ref = refs.environment;
    const cached = isUuid(ref) ? this.#placements.get(ref) : undefined;
    if (cached !== undefined && cached.tenantId === tenantId) {
      if (cached.projectId !== projectId) throw new NotFoundError("environment", ref);
      return { tenantId, projectId, environment: cached };
    }
    const env = await this.environment(ctx, tenantId, projectId, ref);
    const environment = {
      id: env.id,
      projectId: env.projectId,
      datacenterId: env.datacenterId,
      tenantId,
    };
    this.#placements.set(env.id, environment);
    return { tenantId, projectId, environment };
  }

  /** Forgets where a deleted environment was. */
  forgetEnvironment(id: string): void {
    this.#placements.delete(id);
  }

  /** Forgets what was resolved of a deleted tenant. */
  forgetTenant(id: string): void {
    this.#tenantNames.delete(id);
    for (const [claim, entry] of this.#claims) if (entry.id === id) this.#claims.delete(claim);
  }

  /** Forgets what was resolved of a deleted project. */
  forgetProject(id: string): void {
    this.#projectNames.delete(id);
  }
}

/** @throws {ForbiddenError} unless the caller is an operator. */
export function requireOperator(ctx: CallContext, what: string): void {
  if (ctx.principal.role !== "operator") throw new ForbiddenError(`only operators may ${what}`);
}

/** @throws {ForbiddenError} when the caller's role may only read. */
export function requireWrite(ctx: CallContext, what: string): void {
  if (!canWrite(ctx.principal))
    throw new ForbiddenError(`a ${ctx.principal.role} token may not ${what}`);
}

/** An audit record of the caller's change: its actor and correlation id added. */
export function auditEntry(
  ctx: CallContext,
  entry: Omit<AuditEntry, "actor" | "correlationId">,
): AuditEntry {
  return { ...entry, actor: actorOf(ctx.principal), correlationId: ctx.correlationId };
}

/** Drops `undefined` fields (exactOptionalPropertyTypes: absent, not undefined). */
export function clean<T extends Record<string, unknown>>(
  value: T,
): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>;
  };
}
