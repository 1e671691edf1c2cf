import {
  LeaseStore,
  registerDeadLetterMetrics,
  registerShardMetrics,
} from "../contexts/runtime/index.js";
import { registerTaskMetrics } from "../contexts/task/index.js";
import { registerPoolMetrics } from "../db/index.js";
import { registerDatabaseMetrics } from "../maintenance/index.js";
import type { WorkerService } from "../messaging/index.js";
import { mountApi } from "./api.js";
import { newHolder, startControllers } from "./controllers.js";
import { openLeaseDatabase } from "./dependencies.js";
import {
  startAdvisoryProcessor,
  startRelay,
  startSimulatorControl,
  startWorker,
} from "./messaging.js";
import { startPlatform } from "./platform.js";
import {
  connectMessaging,
  type MessagingProcess,
  openRoleProcess,
  type RoleOptions,
  type RoleProcess,
  siteOf,
} from "./process.js";

/** What a started role tells its caller. */
export interface RunningRole {
  readonly url: string;
  readonly summary: string;
}

/** The API part of a process: `/api/v1` on its HTTP server. */
export async function mountApiPart(
  base: RoleProcess,
  /** Only `dv dev` may verify tokens with (and create) the development key. */
  allowDevKey: boolean,
): Promise<void> {
  const { config, log, lifecycle } = base.options;
  await mountApi({
    app: base.app,
    config,
    db: base.db,
    log,
    metrics: base.metrics,
    lifecycle,
    allowDevKey,
  });
}

/** What the controller part of a process started. */
export interface ControllerPart {
  /** The replica's name in leases. */
  readonly holder: string;
  readonly platform: Awaited<ReturnType<typeof startPlatform>>;
}

/**
 * The controller part of a process: the platform controllers, the outbox relay, the dead-letter
 * processor, the scrape-time gauges of the system of record (registered by controllers only, so
 * API and worker processes do not report the same rows again), and the tenant-resource
 * controllers.
 */
export async function startControllerPart(base: MessagingProcess): Promise<ControllerPart> {
  const { config, log, lifecycle } = base.options;
  const { services, metrics, js } = base;
  const leaseDb = await openLeaseDatabase(base.deps);
  const holder = newHolder();
  const platform = await startPlatform({
    holder,
    config,
    services,
    log,
    metrics,
    lifecycle,
    ...(leaseDb ? { leaseDb } : {}),
  });
  await startRelay({ services, js, log, metrics, lifecycle, nats: config.nats });
  await startAdvisoryProcessor({ services, js, jsm: base.jsm, log, lifecycle });
  registerDeadLetterMetrics(services.deadLetterStore, metrics);
  registerTaskMetrics(services.taskStore, metrics);
  registerDatabaseMetrics(base.db, metrics);
  registerShardMetrics(new LeaseStore(services.db), config.controller.shards, metrics);
  if (leaseDb) registerPoolMetrics(leaseDb, "leases", metrics);
  await startControllers({
    holder,
    ...(leaseDb ? { leaseDb } : {}),
    services,
    js,
    settings: config.controller,
    datacenterId: config.datacenterId,
    log,
    metrics,
    lifecycle,
  });
  return { holder, platform };
}

/**
 * The worker part of a process for `service`: a domain worker with the simulated driver, and
 * the simulator's controls. It publishes its outcomes through the outbox: some relay of the
 * process (the worker role's own, or the controller part's) must run.
 */
export async function startWorkerPart(
  base: MessagingProcess,
  service: WorkerService,
): Promise<void> {
  const { config, log, lifecycle } = base.options;
  const { services, metrics } = base;
  await startWorker({
    service,
    services,
    js: base.js,
    settings: config.worker,
    log,
    metrics,
    lifecycle,
    site: siteOf(config),
  });
  startSimulatorControl({ service, services, nc: base.nats.nc, log, lifecycle });
}

/** `dv api`: the public API (and health, readiness, metrics) over PostgreSQL. */
export async function startApiRole(options: RoleOptions): Promise<RunningRole> {
  const base = await openRoleProcess({ ...options, role: "api", embedded: false });
  await mountApiPart(base, false);
  return { url: await base.listen(), summary: "API /api/v1" };
}

/**
 * `dv controller`: the tenant-resource controllers (leases, triggers, reconcilers), the outbox
 * relay and the dead-letter processor; with no kubeconfig, the platform configuration directory
 * is applied at start.
 */
export async function startControllerRole(options: RoleOptions): Promise<RunningRole> {
  const base = await connectMessaging(
    await openRoleProcess({ ...options, role: "controller", embedded: false }),
  );
  const controllers = await startControllerPart(base);
  return { url: await base.listen(), summary: `controller ${controllers.holder}` };
}

/** `dv worker --service <name>`: a domain worker with the simulated driver, and an outbox relay. */
export async function startWorkerRole(
  options: RoleOptions & { readonly service: WorkerService },
): Promise<RunningRole> {
  const { config, log, lifecycle } = options;
  const base = await connectMessaging(
    await openRoleProcess({ ...options, role: `worker-${options.service}`, embedded: false }),
  );
  const { services, metrics, js } = base;
  await startRelay({ services, js, log, metrics, lifecycle, nats: config.nats });
  await startWorkerPart(base, options.service);
  return { url: await base.listen(), summary: `worker ${options.service}` };
}
