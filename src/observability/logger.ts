import { pino, type DestinationStream, type Logger, type LoggerOptions } from "pino";

/** The root logger type every module receives and narrows with `child()`. */
export type { Logger } from "pino";

/**
 * Field names whose values are secrets wherever they appear (one or two levels deep), so a
 * careless `log.info({ headers })` or `log.error({ err })` still cannot leak them.
 */
const SECRET_KEYS = [
  "password",
  "passwd",
  "secret",
  "token",
  "accessToken",
  "refreshToken",
  "apiKey",
  "api_key",
  "authorization",
  "Authorization",
  "cookie",
  "set-cookie",
  "privateKey",
  "signingKey",
  "connectionString",
];

/** pino redact paths for {@link SECRET_KEYS} at the top level and nested up to three levels. */
export const REDACT_PATHS: readonly string[] = SECRET_KEYS.flatMap((k) => {
  const prop = /^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `["${k}"]`;
  const top = /^[A-Za-z_$][\w$]*$/.test(k) ? k : `["${k}"]`;
  return [top, `*${prop}`, `*.*${prop}`, `*.*.*${prop}`];
});

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  readonly level: LoggerOptions["level"];
  /** The process role: `dev`, `api`, `controller`, `worker-nett`, … */
  readonly service: string;
  readonly datacenterId: string;
  /** Where lines go; stdout by default. Tests pass a stream they can read back. */
  readonly destination?: DestinationStream;
}

/**
 * Creates the one root logger of a process: JSON lines with `service` and `datacenter_id` on
 * every line, ISO timestamps, level names, and secret-looking fields redacted.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pinoOptions: LoggerOptions = {
    level: options.level ?? "info",
    base: { service: options.service, datacenter_id: options.datacenterId },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: [...REDACT_PATHS], censor: "[REDACTED]" },
    serializers: { err: pino.stdSerializers.err },
  };
  return options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);
}

/** Returns a URL safe to log: the password of `scheme://user:password@host` replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "REDACTED";
    return parsed.toString();
  } catch {
    return "[unparseable URL]";
  }
}
