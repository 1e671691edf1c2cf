// The public API on a real PostgreSQL (a fresh database per test file), driven through
// Fastify's inject: the whole HTTP stack — routing, authentication, validation, serialisation —
// without a socket.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from "fastify";
import { expect } from "vitest";
import { fileURLToPath } from "node:url";
import { mountApi } from "../../src/app/api.js";
import { syncPlatformDirectory } from "../../controllers/index.js";
import { createServices } from "../../src/app/index.js";
import { loadDevKey, type MintOptions, mintToken, type Role } from "../../src/auth/index.js";
import { loadConfig } from "../../src/config/index.js";
import { connectPostgres } from "../../src/db/index.js";
import { createHttpServer, registerOpsRoutes } from "../../src/http/index.js";
import { newId } from "../../src/kernel/index.js";
import { Lifecycle } from "../../src/lifecycle/index.js";
import { createLogger, createMetricsRegistry } from "../../src/observability/index.js";
import type { ApiFacade } from "../../src/api/index.js";
import { createTestDatabase, type TestDatabase } from "./database.js";

/** The platform configuration every API test starts with. */
export const PLATFORM_DIR = fileURLToPath(new URL("../fixtures/platform", import.meta.url));

/** A running API over a test database, with helpers to call it as anyone. */
export interface ApiHarness {
  readonly app: FastifyInstance;
  readonly facade: ApiFacade;
  readonly t: TestDatabase;
  /** Mints a token of the development key. */
  token(role: Role, tenant?: string, project?: string, subject?: string): Promise<string>;
  /** Mints a token of the development key with any claims (an `iat` of `now`, a lifetime). */
  mint(options: Omit<MintOptions, "key" | "issuer" | "audience">): Promise<string>;
  /** The development key file the API verifies with (for `dv token create`). */
  readonly keyFile: string;
  /** Calls the API with `token` as the bearer. */
  call(token: string | undefined, options: InjectOptions): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/** Options of {@link startApi}. */
export interface StartApiOptions {
  /**
   * Connect as the database's owner instead of `dv_app` (a login that may act only as the context
   * roles): what the operators' `/database` routes need (`pg_dump`, the migrations table).
   */
  readonly owner?: boolean;
}

/** Starts the API; `env` adds configuration (rate limits, …). */
export async function startApi(
  env: Record<string, string> = {},
  options: StartApiOptions = {},
): Promise<ApiHarness> {
  const t = await createTestDatabase();
  const owner = options.owner
    ? await connectPostgres({
        url: t.url(),
        poolMax: 10,
        log: createLogger({ level: "silent", service: "test-api", datacenterId: "dc1" }),
      })
    : undefined;
  const keyFile = join(mkdtempSync(join(tmpdir(), "dv-api-")), "key.json");
  const config = loadConfig({
    env: { DV_AUTH_DEV_KEY_FILE: keyFile, DV_API_RATE_LIMIT: "100000", ...env },
    cwd: process.cwd(),
  });
  const log = createLogger({ level: "silent", service: "test-api", datacenterId: "dc1" });
  const metrics = createMetricsRegistry();
  const lifecycle = new Lifecycle(log);
  const app = createHttpServer({ log, metrics, bodyLimitBytes: config.http.bodyLimitBytes });
  registerOpsRoutes(app, { metrics, readiness: () => [] });
  const { facade } = await mountApi({
    app,
    config,
    db: owner ?? t.db,
    log,
    metrics,
    lifecycle,
    allowDevKey: true,
  });
  await app.ready();
  const key = await loadDevKey(keyFile, false);

  // The platform configuration a controller would have synced (test/fixtures/platform: dc1 with
  // a default network pool and m1-large servers), so requests naming them are admitted.
  await syncPlatformDirectory(createServices(t.db, newId), PLATFORM_DIR, log);

  return {
    app,
    facade,
    t,
    token: (role, tenant, project, subject = `${role}-user`) =>
      mintToken({
        key,
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        subject,
        role,
        tenant,
        project,
        ttlSeconds: 3600,
      }),
    mint: (options) =>
      mintToken({ key, issuer: config.auth.issuer, audience: config.auth.audience, ...options }),
    keyFile,
    call: (token, options) =>
      app.inject({
        ...options,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(options.headers ?? {}),
        },
      }),
    async close() {
      await app.close();
      await lifecycle.stop("test done");
      await owner?.close();
      await t.drop();
    },
  };
}

/** A tenant with a project, an environment and a network, made through the API. */
export interface Seeded {
  readonly tenant: { id: string; name: string };
  readonly project: { id: string; name: string };
  readonly environment: { id: string; name: string };
  readonly network: { id: string; name: string };
  readonly task: { id: string };
  readonly adminToken: string;
}

/** Creates a tenant (as operator) and its project, environment and network (as its admin). */
export async function seedTenant(api: ApiHarness, name: string): Promise<Seeded> {
  const operator = await api.token("operator");
  const tenant = await api.call(operator, {
    method: "POST",
    url: "/api/v1/tenants",
    payload: { name },
  });
  if (tenant.statusCode !== 201) throw new Error(`seeding tenant: ${tenant.body}`);
  const tenantId = tenant.json<{ metadata: { id: string } }>().metadata.id;
  const adminToken = await api.token("tenant-admin", name);
  const base = `/api/v1/tenants/${tenantId}`;
  const project = await api.call(adminToken, {
    method: "POST",
    url: `${base}/projects`,
    payload: { name: `${name}-web` },
  });
  const projectId = project.json<{ metadata: { id: string } }>().metadata.id;
  const env = await api.call(adminToken, {
    method: "POST",
    url: `${base}/projects/${projectId}/environments`,
    payload: { name: `${name}-prod`, datacenter: "dc1" },
  });
  const envId = env.json<{ metadata: { id: string } }>().metadata.id;
  const network = await api.call(adminToken, {
    method: "POST",
    url: `${base}/projects/${projectId}/environments/${envId}/networks`,
    payload: { name: `${name}-net`, spec: { prefixLength: 26 } },
  });
  if (network.statusCode !== 202) throw new Error(`seeding network: ${network.body}`);
  const task = network.json<{ id: string; resource: { id: string } }>();
  return {
    tenant: { id: tenantId, name },
    project: { id: projectId, name: `${name}-web` },
    environment: { id: envId, name: `${name}-prod` },
    network: { id: task.resource.id, name: `${name}-net` },
    task: { id: task.id },
    adminToken,
  };
}

/** An RFC 9457 problem as the API sends it. */
export interface ProblemResponse {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: { pointer: string; message: string }[];
  quota?: { name: string; scope: string; limit: number; used: number; requested: number };
  [extra: string]: unknown;
}

/**
 * The body of a problem response, after checking its status, that it is
 * `application/problem+json`, and (when given) its problem type.
 */
export function expectProblem(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  status: number,
  type?: string,
): ProblemResponse {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(response.body) as ProblemResponse;
  expect(body.status).toBe(status);
  expect(typeof body.detail).toBe("string");
  if (type !== undefined) expect(body.type).toBe(`https://dataverket.io/problems/${type}`);
  return body;
}
