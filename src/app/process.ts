import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config/index.js";
import { type Database, registerPoolMetrics } from "../db/index.js";
import {
  createHttpServer,
  listenHttp,
  type ReadinessCheck,
  registerOpsRoutes,
} from "../http/index.js";
import { DEFAULT_TOPOLOGY, ensureTopology } from "../jetstream/index.js";
import { newId } from "../kernel/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { createMetricsRegistry, type Logger, type Registry } from "../observability/index.js";
import { type DependencyOptions, openDatabase, openNats } from "./dependencies.js";
import { createServices, type Services } from "./services.js";

/** Options every process role takes. */
export interface RoleOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  readonly repoRoot: string;
  readonly searchPath: string;
}

/**
 * What the roles of one process share: one HTTP server (`/healthz`, `/readyz`, `/metrics`, and
 * the API where a role mounts it), one metric registry, one database and its services.
 */
export interface RoleProcess {
  readonly options: RoleOptions;
  readonly app: FastifyInstance;
  readonly metrics: Registry;
  readonly db: Database;
  readonly services: Services;
  /** What the dependency openers of this process take (its readiness checks among them). */
  readonly deps: DependencyOptions;
  /** Whether this process may embed PGlite and a nats-server (`dv dev` only). */
  readonly embedded: boolean;
  /** Starts serving HTTP, once every route is registered; resolves with the URL. */
  listen(): Promise<string>;
}

/** A process connected to NATS with the JetStream topology declared. */
export interface MessagingProcess extends RoleProcess {
  readonly nats: {
    readonly nc: NatsConnection;
    readonly url: string;
    readonly embeddedPid?: number;
  };
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/**
 * Opens what every role needs: the HTTP server with the operational routes (not listening yet),
 * the metric registry, the database (migrated) and the services over it.
 *
 * @throws {StoppedError} when the lifecycle began stopping. @throws {StartupError} when the
 *   database cannot be reached. @throws {ConfigError} when `DATABASE_URL` is missing and
 *   `embedded` is false.
 */
export async function openRoleProcess(
  options: RoleOptions & {
    /** The role's name: the client name of its connections (`dv-<role>`). */
    readonly role: string;
    /** Allow embedded PGlite (and, with {@link connectMessaging}, a nats-server) when unset. */
    readonly embedded: boolean;
  },
): Promise<RoleProcess> {
  const { config, log, lifecycle } = options;
  const metrics = createMetricsRegistry();
  const readiness: ReadinessCheck[] = [];
  const app = createHttpServer({ log, metrics, bodyLimitBytes: config.http.bodyLimitBytes });
  registerOpsRoutes(app, { metrics, readiness: () => readiness });
  const deps: DependencyOptions = { config, log, lifecycle, readiness, role: options.role };
  lifecycle.throwIfStopping();
  const db = await openDatabase({ ...deps, embedded: options.embedded, migrate: true });
  registerPoolMetrics(db, "main", metrics);
  return {
    options,
    app,
    metrics,
    db,
    services: createServices(db, newId, undefined, config.datacenterId),
    deps,
    embedded: options.embedded,
    async listen() {
      lifecycle.throwIfStopping();
      const url = await listenHttp(app, config.http.host, config.http.port);
      lifecycle.add("http", () => app.close());
      return url;
    },
  };
}

/**
 * Connects `base` to NATS (or, embedded, to a nats-server it starts) and declares the
 * JetStream topology: streams and the workers' durable consumers.
 *
 * @throws {StoppedError} when the lifecycle began stopping. @throws {StartupError} when NATS
 *   cannot be reached.
 */
export async function connectMessaging(base: RoleProcess): Promise<MessagingProcess> {
  const { config, lifecycle, repoRoot, searchPath } = base.options;
  lifecycle.throwIfStopping();
  const nats = await openNats({ ...base.deps, embedded: base.embedded, repoRoot, searchPath });
  lifecycle.throwIfStopping();
  const jsm = await jetstreamManager(nats.nc);
  await ensureTopology(jsm, undefined, {
    ...DEFAULT_TOPOLOGY,
    ackWaitMs: config.worker.ackWaitMs,
    maxDeliver: config.worker.maxAttempts + 3,
    // With sites linked, this NATS stores the commands other sites send this datacenter.
    site: siteOf(config),
  });
  return { ...base, nats, js: jetstream(nats.nc), jsm };
}

/** This process's datacenter when sites are linked (they have workers of their own), else none. */
export function siteOf(config: Config): string | undefined {
  return config.nats.remoteDatacenters.length > 0 ? config.datacenterId : undefined;
}
