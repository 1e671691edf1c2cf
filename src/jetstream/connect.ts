import { connect, type NatsConnection } from "@nats-io/transport-node";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import { type Logger, redactUrl } from "../observability/index.js";

/** Options of {@link connectNats}. */
export interface ConnectNatsOptions {
  /** Comma-separated server URLs, as `NATS_URL` holds them. */
  readonly servers: string;
  /** Client name shown in the server's connection list (`dv-worker-nett`). */
  readonly name: string;
  readonly log: Logger;
  /** How the URL was configured, named in errors (`NATS_URL`). */
  readonly source?: string;
  readonly timeoutMs?: number;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
]);

function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/**
 * Connects to NATS and keeps reconnecting for the life of the process (the outbox holds what
 * cannot be sent meanwhile). Only the first connection must succeed.
 *
 * @throws {StartupError} `DV_NATS_UNREACHABLE` when no server answers, naming the URL's source.
 */
export async function connectNats(options: ConnectNatsOptions): Promise<NatsConnection> {
  const source = options.source ?? "NATS_URL";
  const servers = options.servers.split(",").map((s) => s.trim());
  try {
    const nc = await connect({
      servers,
      name: options.name,
      timeout: options.timeoutMs ?? 5_000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      reconnectJitter: 250,
      pingInterval: 10_000,
      // Every request (each JetStream publish) otherwise captures two stack traces up front, in
      // case it fails: a tenth of the relay's CPU. The errors still say what failed.
      noAsyncTraces: true,
    });
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect")
          options.log.warn({ server: status.server }, "NATS disconnected");
        else if (status.type === "reconnect")
          options.log.info({ server: status.server }, "NATS reconnected");
      }
    })();
    return nc;
  } catch (err) {
    const code = errorCode(err);
    const reason = code && NETWORK_CODES.has(code) ? code : "no answer before the timeout";
    throw new StartupError(
      StartupErrorCode.NatsUnreachable,
      `cannot reach NATS at ${servers.map(redactUrl).join(", ")} (${source}): ${reason}`,
      `start it (bash hack/nats.sh start for the test server) or fix ${source}; unset it and dv dev starts its own`,
      { cause: err },
    );
  }
}
