import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { Config } from "../config/index.js";
import {
  createHttpServer,
  listenHttp,
  type ReadinessCheck,
  registerOpsRoutes,
} from "../http/index.js";
import { newId } from "../kernel/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import type { WorkerService } from "../messaging/index.js";
import { DEFAULT_TOPOLOGY, ensureTopology } from "../jetstream/index.js";
import { createMetricsRegistry, type Logger } from "../observability/index.js";
import { mountApi } from "./api.js";
import { newHolder, startControllers } from "./controllers.js";
import { openDatabase, openLeaseDatabase, openNats } from "./dependencies.js";
import {
  registerDatabaseMetrics,
  registerDeadLetterMetrics,
  registerPoolMetrics,
  registerProgressMetrics,
  registerTaskMetrics,
  startAdvisoryProcessor,
  startRelay,
  startSimulatorControl,
  startWorker,
} from "./messaging.js";
import { startPlatform } from "./platform.js";
import { createServices } from "./services.js";

/** Options every process role takes. */
export interface RoleOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  readonly repoRoot: string;
  readonly searchPath: string;
}

/** What a started role tells its caller. */
export interface RunningRole {
  readonly url: string;
  readonly summary: string;
}

async function base(options: RoleOptions, role: string, withNats: boolean) {
  const { config, log, lifecycle } = options;
  const metrics = createMetricsRegistry();
  const readiness: ReadinessCheck[] = [];
  const app = createHttpServer({ log, metrics, bodyLimitBytes: config.http.bodyLimitBytes });
  registerOpsRoutes(app, { metrics, readiness: () => readiness });
  const deps = { config, log, lifecycle, readiness, role };
  lifecycle.throwIfStopping();
  const db = await openDatabase({ ...deps, embedded: false, migrate: true });
  lifecycle.throwIfStopping();
  const nats = withNats
    ? await openNats({
        ...deps,
        embedded: false,
        repoRoot: options.repoRoot,
        searchPath: options.searchPath,
      })
    : undefined;
  let js;
  let jsm;
  if (nats) {
    jsm = await jetstreamManager(nats.nc);
    await ensureTopology(jsm, undefined, {
      ...DEFAULT_TOPOLOGY,
      ackWaitMs: config.worker.ackWaitMs,
      maxDeliver: config.worker.maxAttempts + 3,
      // With sites linked, this NATS stores the commands other sites send this datacenter.
      site: config.nats.remoteDatacenters.length > 0 ? config.datacenterId : undefined,
    });
    js = jetstream(nats.nc);
  }
  const listen = async (): Promise<string> => {
    lifecycle.throwIfStopping();
    const url = await listenHttp(app, config.http.host, config.http.port);
    lifecycle.add("http", () => app.close());
    return url;
  };
  registerPoolMetrics(db, "main", metrics);
  return {
    app,
    metrics,
    db,
    nc: nats?.nc,
    js,
    jsm,
    listen,
    deps,
    services: createServices(db, newId, undefined, config.datacenterId),
  };
}

/** `dv api`: the public API (and health, readiness, metrics) over PostgreSQL. */
export async function startApiRole(options: RoleOptions): Promise<RunningRole> {
  const b = await base(options, "api", false);
  await mountApi({
    app: b.app,
    config: options.config,
    db: b.db,
    log: options.log,
    metrics: b.metrics,
    lifecycle: options.lifecycle,
    allowDevKey: false,
  });
  return { url: await b.listen(), summary: "API /api/v1" };
}

/**
 * `dv controller`: the tenant-resource controllers (leases, triggers, reconcilers), the outbox
 * relay and the dead-letter processor; with no kubeconfig, the platform configuration directory
 * is applied at start.
 */
export async function startControllerRole(options: RoleOptions): Promise<RunningRole> {
  const { config, log, lifecycle } = options;
  const b = await base(options, "controller", true);
  const leaseDb = await openLeaseDatabase(b.deps);
  const holder = newHolder();
  await startPlatform({
    holder,
    config,
    services: b.services,
    log,
    metrics: b.metrics,
    lifecycle,
    ...(leaseDb ? { leaseDb } : {}),
  });
  await startRelay(b.services, b.js!, log, b.metrics, lifecycle, config.nats);
  await startAdvisoryProcessor(b.services, b.js!, b.jsm!, log, lifecycle);
  registerDeadLetterMetrics(b.services, b.metrics);
  registerTaskMetrics(b.services, b.metrics);
  registerDatabaseMetrics(b.db, b.metrics);
  registerProgressMetrics(b.services, config.controller.shards, b.metrics);
  if (leaseDb) registerPoolMetrics(leaseDb, "leases", b.metrics);
  const plane = await startControllers({
    holder,
    ...(leaseDb ? { leaseDb } : {}),
    services: b.services,
    js: b.js,
    settings: config.controller,
    datacenterId: config.datacenterId,
    log,
    metrics: b.metrics,
    lifecycle,
  });
  return { url: await b.listen(), summary: `controller ${plane.holder}` };
}

/** `dv worker --service <name>`: a domain worker with the simulated driver, and an outbox relay. */
export async function startWorkerRole(
  options: RoleOptions & { readonly service: WorkerService },
): Promise<RunningRole> {
  const { config, log, lifecycle } = options;
  const b = await base(options, `worker-${options.service}`, true);
  await startRelay(b.services, b.js!, log, b.metrics, lifecycle, config.nats);
  await startWorker(
    options.service,
    b.services,
    b.js!,
    config.worker,
    log,
    b.metrics,
    lifecycle,
    config.nats.remoteDatacenters.length > 0 ? config.datacenterId : undefined,
  );
  startSimulatorControl(options.service, b.services, b.nc!, log, lifecycle);
  return { url: await b.listen(), summary: `worker ${options.service}` };
}
