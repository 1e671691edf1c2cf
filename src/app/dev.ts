import type { Config } from "../config/index.js";
import { loadDevKey, mintToken } from "../auth/index.js";
import { portIsFree } from "../dev/index.js";
import {
  type Lifecycle,
  StartupError,
  StartupErrorCode,
  StoppedError,
} from "../lifecycle/index.js";
import { WORKER_SERVICES } from "../messaging/index.js";
import type { Logger } from "../observability/index.js";
import { connectMessaging, openRoleProcess } from "./process.js";
import { mountApiPart, startControllerPart, startWorkerPart } from "./roles.js";

/** Options of {@link startDev}. */
export interface StartDevOptions {
  readonly config: Config;
  readonly log: Logger;
  readonly repoRoot: string;
  /** `PATH`, to find a nats-server binary. */
  readonly searchPath: string;
  /** Owns everything started; the caller stops it (on a signal). */
  readonly lifecycle: Lifecycle;
}

/** The running control plane of `dv dev`. */
export interface RunningDev {
  readonly apiUrl: string;
  readonly natsUrl: string;
  readonly database: string;
  /** Human-readable lines for the terminal. */
  readonly banner: string;
  /** A development operator token, valid 12 hours. */
  readonly operatorToken: string;
}

/**
 * Starts the whole control plane in one process on loopback: the HTTP server first (so
 * `/healthz` answers and a taken port fails before anything else starts), then PostgreSQL or
 * embedded PGlite, then NATS or an embedded nats-server. If any step fails, what already
 * started is stopped before the error is rethrown.
 *
 * @throws {StoppedError} when `lifecycle` began stopping (a signal) during startup.
 * @throws {StartupError} when a port is taken or a dependency cannot be reached.
 */
export async function startDev(options: StartDevOptions): Promise<RunningDev> {
  const { config, log, lifecycle } = options;

  try {
    // Fail before starting anything when the HTTP port is taken; listen once all routes exist.
    if (config.http.port !== 0 && !(await portIsFree(config.http.port, config.http.host))) {
      throw new StartupError(
        StartupErrorCode.PortInUse,
        `port ${config.http.port} (DV_HTTP_PORT) on ${config.http.host} is already in use`,
        "stop what uses it or set DV_HTTP_PORT to another port",
      );
    }
    // The three roles in one process, sharing one HTTP server, database, NATS connection and
    // outbox relay (the controller part's): the controller role, a worker of every service, the API.
    const base = await connectMessaging(
      await openRoleProcess({ ...options, role: "dev", embedded: true }),
    );
    const { db, nats } = base;
    const controllers = await startControllerPart(base);
    const platform = controllers.platform.summary ?? {
      applied: new Map<string, number>(),
      refused: 0,
    };
    for (const service of WORKER_SERVICES) await startWorkerPart(base, service);

    lifecycle.throwIfStopping();
    await mountApiPart(base, true);
    const key = await loadDevKey(config.auth.devKeyFile, false);
    const operatorToken = await mintToken({
      key,
      issuer: config.auth.issuer,
      audience: config.auth.audience,
      subject: "dev-operator",
      role: "operator",
      ttlSeconds: 12 * 3600,
    });

    await base.listen();
    const address = base.app.server.address();
    const port = typeof address === "object" && address ? address.port : config.http.port;
    const apiUrl = `http://${config.http.host}:${port}`;

    const platformSummary =
      [...platform.applied].map(([kind, n]) => `${n} ${kind}`).join(", ") || "empty";

    const banner = [
      "",
      "  Dataverket control plane is running (dv dev)",
      `  API        ${apiUrl}/api/v1`,
      `  health     ${apiUrl}/healthz   ${apiUrl}/readyz`,
      `  metrics    ${apiUrl}/metrics`,
      `  database   ${db.target}`,
      `  NATS       ${nats.url}${nats.embeddedPid === undefined ? "" : ` (embedded, pid ${nats.embeddedPid})`}`,
      controllers.platform.source === "kubernetes"
        ? "  platform   custom resources of the cluster in KUBECONFIG (watched)"
        : `  platform   ${config.platform.configDir} (${platformSummary}${platform.refused > 0 ? `; ${platform.refused} refused, see the log` : ""}; watched for changes)`,
      `  workers    ${WORKER_SERVICES.join(", ")} (simulated drivers, ${config.worker.simLatencyMs} ms per operation)`,
      "  logs       JSON lines on stdout (this banner is on stderr)",
      "",
      "  A development operator token (12 h):",
      `    export DV_TOKEN=${operatorToken}`,
      `  Try:  curl -s -H "Authorization: Bearer $DV_TOKEN" ${apiUrl}/api/v1/tenants`,
      "  Tenant tokens:  npx dv token create --role tenant-admin --tenant <name>",
      "  stop       Ctrl-C",
      "",
    ].join("\n");
    log.info({ apiUrl, natsUrl: nats.url, database: db.target }, "control plane ready");
    return { apiUrl, natsUrl: nats.url, database: db.target, banner, operatorToken };
  } catch (err) {
    // A step that fails because a signal is already stopping what it needs is not a failure.
    const interrupted = lifecycle.stopping;
    await lifecycle.stop("startup failed");
    if (interrupted) throw new StoppedError({ cause: err });
    throw err;
  }
}
