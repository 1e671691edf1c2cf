import type { NatsConnection } from "@nats-io/transport-node";
import { type Config, ConfigError } from "../config/index.js";
import {
  connectPostgres,
  inRecovery,
  type Database,
  migrationStatus,
  openPglite,
  runMigrations,
} from "../db/index.js";
import { startEmbeddedNats } from "../dev/index.js";
import type { ReadinessCheck } from "../http/index.js";
import { type Lifecycle, StartupError, StartupErrorCode } from "../lifecycle/index.js";
import { connectNats } from "../jetstream/index.js";
import { packageVersion } from "../meta/index.js";
import { type Logger, startTracing } from "../observability/index.js";

/** Options shared by the dependency openers. */
export interface DependencyOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  /** Readiness checks of the process; openers add theirs. */
  readonly readiness: ReadinessCheck[];
  /** Name of the process role, used as the client name on connections. */
  readonly role: string;
}

/**
 * Opens the system of record: the PostgreSQL server of `DATABASE_URL`, or, when `embedded` is
 * allowed and no URL is set, PGlite in `database.pgliteDir`; then brings its schema up to date.
 *
 * @throws {StartupError} when the server cannot be reached. @throws {MigrationError}
 */
export async function openDatabase(
  options: DependencyOptions & {
    readonly embedded: boolean;
    /** Apply pending migrations before returning (all or nothing). */
    readonly migrate: boolean;
  },
): Promise<Database> {
  const { config, log } = options;
  let db: Database;
  if (config.database.url) {
    db = await connectPostgres({
      url: config.database.url,
      poolMax: config.database.poolMax,
      idleInTransactionTimeoutMs: config.database.idleInTransactionTimeoutMs,
      log,
      applicationName: `dv-${options.role}`,
      pgBinDir: config.database.pgBinDir,
    });
  } else if (options.embedded) {
    db = await openPglite({ dataDir: config.database.pgliteDir });
  } else {
    throw new ConfigError([
      {
        source: "DATABASE_URL",
        message: `is required for dv ${options.role} (only dv dev embeds PGlite)`,
      },
    ]);
  }
  log.info({ database: db.target, dialect: db.dialect }, "database connected");
  options.lifecycle.add("database", () => db.close());
  // A replica refuses every write (seed 002: never write to what may be a former primary or a
  // standby). The API can still serve reads from it; every other role writes as it starts.
  const replicaMessage = `the database server ${db.target} is a replica (pg_is_in_recovery() is true): it refuses writes`;
  const replicaHint = "point DATABASE_URL at the primary, or promote this server";
  let replica = await inRecovery(db);
  if (replica) {
    if (options.role !== "api") {
      throw new StartupError(
        StartupErrorCode.PostgresReadOnly,
        `${replicaMessage}, and dv ${options.role.split("-")[0] ?? options.role} has to write`,
        replicaHint,
      );
    }
    log.error(
      { database: db.target },
      `${replicaMessage}: serving reads only, writes answer 503, migrations not applied; ${replicaHint}`,
    );
  }
  if (options.migrate && !replica) {
    const before = await migrationStatus(db);
    await runMigrations(db);
    const after = await migrationStatus(db);
    log.info(
      { applied: after.applied - before.applied, latest: after.latest },
      "database schema is current",
    );
  }
  options.readiness.push({
    name: "postgres",
    check: async () => {
      await db.ping();
      const now = await inRecovery(db);
      if (now !== replica) {
        // Say it once when the role changes (a promotion, or a former primary come back as a
        // replica), not on every probe.
        if (now) log.error({ database: db.target }, `${replicaMessage}; ${replicaHint}`);
        else
          log.warn(
            { database: db.target },
            "the database server is a primary again: writes are accepted",
          );
        replica = now;
      }
      if (now) throw new Error(`${replicaMessage}; ${replicaHint}`);
    },
  });
  return db;
}

/**
 * Opens a second, small pool to the PostgreSQL server of `DATABASE_URL` for the lease manager, so
 * lease renewals never wait for a connection behind busy reconcile passes. Undefined with the
 * embedded PGlite, which has a single connection anyway.
 */
export async function openLeaseDatabase(options: DependencyOptions): Promise<Database | undefined> {
  const { config, log } = options;
  if (!config.database.url) return undefined;
  const db = await connectPostgres({
    url: config.database.url,
    poolMax: 2,
    idleInTransactionTimeoutMs: config.database.idleInTransactionTimeoutMs,
    log,
    applicationName: `dv-${options.role}-leases`,
  });
  options.lifecycle.add("lease database", () => db.close());
  return db;
}

/**
 * Connects to NATS at `NATS_URL`, or, when `embedded` is allowed and no URL is set, starts a
 * nats-server child process first.
 */
export async function openNats(
  options: DependencyOptions & {
    readonly embedded: boolean;
    readonly repoRoot: string;
    readonly searchPath: string;
  },
): Promise<{ nc: NatsConnection; url: string; embeddedPid?: number }> {
  const { config, log, lifecycle } = options;
  let url = config.nats.url;
  let embeddedPid: number | undefined;
  let source = "NATS_URL";
  if (!url) {
    if (!options.embedded)
      throw new ConfigError([
        {
          source: "NATS_URL",
          message: `is required for dv ${options.role} (only dv dev starts its own)`,
        },
      ]);
    const server = await startEmbeddedNats({
      bin: config.nats.serverBin,
      port: config.nats.port,
      storeDir: config.nats.storeDir,
      log,
      repoRoot: options.repoRoot,
      searchPath: options.searchPath,
    });
    lifecycle.add("nats-server", () => server.stop());
    url = server.url;
    embeddedPid = server.pid;
    source = "the embedded nats-server";
  }
  const nc = await connectNats({ servers: url, name: `dv-${options.role}`, log, source });
  lifecycle.add("nats", async () => {
    await nc.drain().catch(() => nc.close());
  });
  options.readiness.push({
    name: "nats",
    check: async () => {
      if (nc.isClosed()) throw new Error("connection closed");
      await nc.flush();
    },
  });
  log.info({ server: nc.getServer() }, "NATS connected");
  return embeddedPid === undefined ? { nc, url } : { nc, url, embeddedPid };
}

/**
 * Exports this process's spans to `OTEL_EXPORTER_OTLP_ENDPOINT` when it is set, until the
 * process stops (the last spans are flushed then). Called first, so it stops last.
 */
export async function openTracing(options: {
  readonly config: Config;
  readonly log: Logger;
  readonly lifecycle: Lifecycle;
  /** `service.name` of the spans, like `dataverket-api`. */
  readonly serviceName: string;
}): Promise<void> {
  const { config } = options;
  if (!config.tracing.otlpEndpoint) return;
  const tracing = await startTracing({
    endpoint: config.tracing.otlpEndpoint,
    serviceName: options.serviceName,
    serviceVersion: packageVersion(),
    datacenterId: config.datacenterId,
    sampleRatio: config.tracing.sampleRatio,
    log: options.log,
  });
  options.lifecycle.add("tracing", () => tracing.shutdown());
}
