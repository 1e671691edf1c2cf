// The whole control plane on real services for a test file: the backbone (database, nats-server,
// relay, advisory processor), the test platform configuration, workers, and controllers — in
// this process, or as `dv` child processes the test can kill, pause and restart.
import { fileURLToPath } from "node:url";
import { ApiFacade, type ResourcePath } from "../../src/api/index.js";
import { syncPlatformDirectory } from "../../controllers/index.js";
import { type ControlPlane, startControllers, type WorkerSettings } from "../../src/app/index.js";
import type { Config } from "../../src/config/index.js";
import { inTransaction } from "../../src/db/index.js";
import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import { freePort } from "../../src/dev/index.js";
import { newId, type TaskState } from "../../src/kernel/index.js";
import type { WorkerService } from "../../src/messaging/index.js";
import { createLogger } from "../../src/observability/index.js";
import type { Worker } from "../../src/workers/index.js";
import { type Backbone, eventually, FAST_WORKERS, startBackbone } from "./backbone.js";
import { type DvProcess, startDv } from "./process.js";

export const PLATFORM_FIXTURE = fileURLToPath(new URL("../fixtures/platform", import.meta.url));

/** Controller settings fast enough for tests. */
export const FAST_CONTROLLER: Config["controller"] = {
  shards: 16,
  leaseTtlMs: 3_000,
  leaseRenewMs: 1_000,
  leaseRetryMs: 300,
  resyncMs: 2_000,
  concurrency: 8,
  redispatchAfterMs: 5_000,
  observeEveryMs: 60_000,
};

/** The control plane of a test file. */
export interface Plane extends Backbone {
  readonly facade: ApiFacade;
  /** Workers in this process, by service. */
  readonly workers: Map<WorkerService, Worker>;
  /** Controllers in this process, when started with `controllers: true`. */
  readonly controllers: ControlPlane | undefined;
  /** Asks for a resource as a tenant would (through the API facade); returns it and its task. */
  request(
    kind: ResourceKind,
    name: string,
    spec: Record<string, unknown>,
  ): Promise<{ resource: Resource; taskId: string }>;
  /**
   * Creates buckets named `names` with their create tasks in one transaction, as the API would
   * (without its round trips): for tests that need many resources at once. Returns their ids.
   */
  createBuckets(names: readonly string[]): Promise<string[]>;
  /** Waits until the resource's task is in one of `states`. */
  taskReaches(taskId: string, states: readonly TaskState[], timeoutMs?: number): Promise<TaskState>;
  /** The environment every request of this plane goes to. */
  readonly path: ResourcePath;
  /** Starts `dv <args>` against this plane's database and nats-server; resolves once /readyz answers 200. */
  spawn(
    args: readonly string[],
    env?: Record<string, string>,
  ): Promise<DvProcess & { port: number }>;
}

const operator = {
  principal: { subject: "test", role: "operator" as const },
  correlationId: "test",
};

/**
 * A new tenant with a project `p` and an environment `e` in `datacenter`, made through `facade`
 * as an operator: the path a test's tenant resources live under.
 */
export async function tenantPath(
  facade: ApiFacade,
  name: string,
  datacenter = "dc1",
): Promise<ResourcePath> {
  const tenant = await facade.createTenant(operator, { name });
  const project = await facade.createProject(operator, tenant.id, { name: "p" });
  const env = await facade.createEnvironment(operator, tenant.id, project.id, {
    name: "e",
    datacenter,
  });
  return { tenant: tenant.id, project: project.id, environment: env.id };
}

/** Starts a control plane for a test file. */
export async function startPlane(options: {
  controllers?: boolean;
  workers?: readonly WorkerService[];
  workerSettings?: Partial<WorkerSettings>;
  controller?: Partial<Config["controller"]>;
  maxDeliver?: number;
  /** False: no outbox relay in this process (the `dv` processes it spawns relay). */
  relay?: boolean;
  /** Superuser URL of another PostgreSQL server than the test server (one a test restarts). */
  server?: string;
}): Promise<Plane> {
  const b = await startBackbone(options.maxDeliver ? { maxDeliver: options.maxDeliver } : {}, {
    relay: options.relay ?? true,
    ...(options.server ? { server: options.server } : {}),
  });
  const log = createLogger({
    level: process.env.DV_TEST_LOG ?? "silent",
    service: "test-plane",
    datacenterId: "dc1",
  });
  await syncPlatformDirectory(b.services, PLATFORM_FIXTURE, log);
  const workers = new Map<WorkerService, Worker>();
  for (const service of options.workers ?? [])
    workers.set(service, await b.worker(service, options.workerSettings ?? {}));
  const controller = { ...FAST_CONTROLLER, ...options.controller };
  const controllers = options.controllers
    ? await startControllers({
        services: b.services,
        js: b.nats.js,
        settings: controller,
        datacenterId: "dc1",
        log,
        metrics: b.metrics,
        lifecycle: b.lifecycle,
      })
    : undefined;

  // Admission reads the platform for every request: tests change it as they go.
  const facade = new ApiFacade({ db: b.t.db, newId, now: () => new Date(), admissionTtlMs: 0 });
  const path = await tenantPath(facade, `t-${newId().slice(-8)}`);

  const children: DvProcess[] = [];
  b.lifecycle.add("children", async () => {
    for (const child of children) {
      if (child.child.exitCode === null && child.child.signalCode === null) {
        child.child.kill("SIGCONT");
        child.child.kill("SIGKILL");
        await child.exited;
      }
    }
  });

  return {
    ...b,
    facade,
    workers,
    controllers,
    path,
    async request(kind, name, spec) {
      const { resource, task } = await facade.createResource(operator, path, kind, { name, spec });
      return { resource, taskId: task.id };
    },
    async createBuckets(names) {
      const ids: string[] = [];
      await inTransaction(b.t.db, async (tx) => {
        for (const name of names) {
          const resource = await b.services.inventory.createResource(tx, {
            kind: "bucket",
            tenantId: path.tenant,
            projectId: path.project,
            environmentId: path.environment,
            datacenterId: "dc1",
            name,
            spec: { quotaGiB: 1, versioning: false },
          });
          ids.push(resource.id);
          await b.services.tasks.create(tx, {
            operation: "bucket.create",
            resourceKind: "bucket",
            resourceId: resource.id,
            resourceGeneration: 1,
            tenantId: path.tenant,
            projectId: path.project,
            environmentId: path.environment,
            datacenterId: "dc1",
            actor: "user:test",
            correlationId: newId(),
          });
        }
      });
      return ids;
    },
    taskReaches(taskId, states, timeoutMs = 30_000) {
      return eventually(
        async () => {
          const task = await b.services.taskStore.get(taskId);
          return states.includes(task.state) ? task.state : undefined;
        },
        timeoutMs,
        `task ${taskId} to reach ${states.join(" or ")}`,
      );
    },
    async spawn(args, env = {}) {
      const port = await freePort();
      const proc = startDv(args, {
        DATABASE_URL: b.t.url(),
        NATS_URL: b.nats.url,
        DV_HTTP_PORT: String(port),
        DV_LOG_LEVEL: process.env.DV_TEST_LOG ?? "warn",
        DV_PLATFORM_CONFIG_DIR: PLATFORM_FIXTURE,
        DV_CONTROLLER_SHARDS: String(controller.shards),
        DV_LEASE_TTL_MS: String(controller.leaseTtlMs),
        DV_LEASE_RENEW_MS: String(controller.leaseRenewMs),
        DV_LEASE_RETRY_MS: String(controller.leaseRetryMs),
        DV_RESYNC_MS: String(controller.resyncMs),
        DV_REDISPATCH_AFTER_MS: String(controller.redispatchAfterMs),
        DV_WORKER_ACK_WAIT_MS: String(options.workerSettings?.ackWaitMs ?? FAST_WORKERS.ackWaitMs),
        DV_WORKER_MAX_ATTEMPTS: String(
          options.workerSettings?.maxAttempts ?? FAST_WORKERS.maxAttempts,
        ),
        DV_WORKER_BACKOFF_BASE_MS: String(
          options.workerSettings?.backoffBaseMs ?? FAST_WORKERS.backoffBaseMs,
        ),
        DV_WORKER_BACKOFF_MAX_MS: String(
          options.workerSettings?.backoffMaxMs ?? FAST_WORKERS.backoffMaxMs,
        ),
        DV_SIM_LATENCY_MS: String(options.workerSettings?.simLatencyMs ?? 0),
        ...env,
      });
      children.push(proc);
      await eventually(
        async () => {
          if (proc.child.exitCode !== null)
            throw new Error(`dv ${args.join(" ")} exited: ${proc.stderr()}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
          return response?.status === 200 ? true : undefined;
        },
        30_000,
        `dv ${args.join(" ")} to be ready`,
      );
      return Object.assign(proc, { port });
    },
  };
}
