import { z } from "zod";

/** Log levels pino understands, in increasing severity; `silent` turns logging off. */
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

const coerceInt = (value: unknown): unknown =>
  typeof value === "string" && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;

const intInRange = (min: number, max: number) => {
  const message = `must be an integer from ${min} to ${max}`;
  return z.preprocess(
    coerceInt,
    z
      .number({ error: message })
      .int({ error: message })
      .min(min, { error: message })
      .max(max, { error: message }),
  );
};

/** A DNS-label-shaped identifier, as Kubernetes names are (`dc1`, `osl-a`). */
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, {
  error: "must be a DNS label: lower-case letters, digits and '-', 1 to 63 characters",
});

const urlWithProtocols = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { error: `must be a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );

const natsUrls = z.string().refine(
  (value) =>
    value.split(",").every((part) => {
      try {
        return ["nats:", "tls:"].includes(new URL(part.trim()).protocol);
      } catch {
        return false;
      }
    }),
  { error: "must be one or more comma-separated nats:// or tls:// URLs" },
);

const path = z.string().min(1, { error: "must be a non-empty path" });

/**
 * The process configuration of every Dataverket role (`dv dev`, `dv api`, `dv controller`,
 * `dv worker`). Each leaf can come from the YAML file or from the environment variable that
 * {@link ENV_BINDINGS} names; the environment wins.
 */
export const configSchema = z.strictObject({
  datacenterId: dnsLabel.default("dc1"),
  log: z
    .strictObject({
      level: z
        .enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(", ")}` })
        .default("info"),
    })
    .prefault({}),
  http: z
    .strictObject({
      host: z.string().min(1, { error: "must be a host name or IP address" }).default("127.0.0.1"),
      port: intInRange(0, 65535).default(8080),
      bodyLimitBytes: intInRange(1024, 64 * 1024 * 1024).default(1024 * 1024),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** A PostgreSQL server; when absent `dv dev` embeds PGlite in `pgliteDir`. */
      url: urlWithProtocols(["postgres:", "postgresql:"]).optional(),
      poolMax: intInRange(1, 500).default(10),
      pgliteDir: path.default(".cache/dev/pglite"),
    })
    .prefault({}),
  nats: z
    .strictObject({
      /** A running nats-server; when absent `dv dev` spawns one. */
      url: natsUrls.optional(),
      /** Client port of the nats-server that `dv dev` spawns. */
      port: intInRange(0, 65535).default(4222),
      /** The nats-server binary `dv dev` spawns; default `.cache/bin/nats-server`, then `PATH`. */
      serverBin: path.optional(),
      storeDir: path.default(".cache/dev/nats"),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      /** A kubeconfig; when absent platform configuration is read from `platform.configDir`. */
      kubeconfig: path.optional(),
    })
    .prefault({}),
  platform: z
    .strictObject({
      configDir: path.default("config/platform"),
    })
    .prefault({}),
});

/** The validated, frozen process configuration. */
export type Config = z.output<typeof configSchema>;

/** How one environment variable maps onto a configuration field. */
export interface EnvBinding {
  readonly env: string;
  readonly path: readonly string[];
}

/** Every environment variable the control plane reads, and the field it sets. */
export const ENV_BINDINGS: readonly EnvBinding[] = [
  { env: "DV_DATACENTER_ID", path: ["datacenterId"] },
  { env: "DV_LOG_LEVEL", path: ["log", "level"] },
  { env: "DV_HTTP_HOST", path: ["http", "host"] },
  { env: "DV_HTTP_PORT", path: ["http", "port"] },
  { env: "DV_HTTP_BODY_LIMIT_BYTES", path: ["http", "bodyLimitBytes"] },
  { env: "DATABASE_URL", path: ["database", "url"] },
  { env: "DV_DB_POOL_MAX", path: ["database", "poolMax"] },
  { env: "DV_PGLITE_DIR", path: ["database", "pgliteDir"] },
  { env: "NATS_URL", path: ["nats", "url"] },
  { env: "DV_NATS_PORT", path: ["nats", "port"] },
  { env: "DV_NATS_SERVER_BIN", path: ["nats", "serverBin"] },
  { env: "DV_NATS_STORE_DIR", path: ["nats", "storeDir"] },
  { env: "KUBECONFIG", path: ["kubernetes", "kubeconfig"] },
  { env: "DV_PLATFORM_CONFIG_DIR", path: ["platform", "configDir"] },
];

/** Fields holding file-system paths, resolved against the working directory at load. */
export const PATH_FIELDS: readonly (readonly string[])[] = [
  ["database", "pgliteDir"],
  ["nats", "serverBin"],
  ["nats", "storeDir"],
  ["kubernetes", "kubeconfig"],
  ["platform", "configDir"],
];
