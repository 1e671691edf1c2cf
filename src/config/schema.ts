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

/** JWS algorithms a deployment may pin (asymmetric only: the API never holds a shared secret). */
export const JWT_ALGORITHMS = ["ES256", "ES384", "EdDSA", "RS256", "PS256"] as const;

const commaList = (value: unknown): unknown =>
  typeof value === "string"
    ? value
        .split(",")
        .map((v) => v.trim())
        .filter(Boolean)
    : value;

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
      /**
       * PostgreSQL ends a session idle inside a transaction for this long: a paused process cannot
       * hold locks (a shard's lease row) for longer.
       */
      idleInTransactionTimeoutMs: intInRange(1000, 3_600_000).default(10_000),
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
  auth: z
    .strictObject({
      /** Expected `iss` of bearer tokens. */
      issuer: z.string().min(1).default("https://dataverket.local/dev"),
      /** Expected `aud` of bearer tokens. */
      audience: z.string().min(1).default("dataverket-api"),
      algorithms: z
        .preprocess(
          commaList,
          z
            .array(z.enum(JWT_ALGORITHMS, { error: `must be one of ${JWT_ALGORITHMS.join(", ")}` }))
            .min(1, { error: "must name at least one algorithm" }),
        )
        .default(["ES256"]),
      /** Where verification keys come from: a JWKS URL (an identity provider)… */
      jwksUrl: urlWithProtocols(["https:", "http:"]).optional(),
      /** …or a PEM public key file… */
      publicKeyFile: path.optional(),
      /** …or, for `dv dev` and `dv token create`, a signing key kept here (created when missing). */
      devKeyFile: path.default(".cache/dev/jwt-signing-key.json"),
    })
    .prefault({}),
  controller: z
    .strictObject({
      /** Keys are spread over this many shards, each leased by one replica at a time. */
      shards: intInRange(1, 4096).default(32),
      /** Lease duration, renew interval and acquire retry (Kubernetes: 15 s, 10 s, 2 s). */
      leaseTtlMs: intInRange(1000, 600_000).default(15_000),
      leaseRenewMs: intInRange(200, 600_000).default(10_000),
      leaseRetryMs: intInRange(100, 600_000).default(2_000),
      /** Every key of the shards held is looked at again this often (with jitter). */
      resyncMs: intInRange(1000, 86_400_000).default(60_000),
      /** Reconcile passes at once, per kind. */
      concurrency: intInRange(1, 1024).default(16),
      /** A command unanswered this long is sent again (de-duplicated by its id). */
      redispatchAfterMs: intInRange(1000, 86_400_000).default(60_000),
      /** How often a ready network is checked for drift. */
      observeEveryMs: intInRange(1000, 86_400_000).default(300_000),
    })
    .refine((c) => c.leaseRenewMs < c.leaseTtlMs, {
      error: "leaseRenewMs must be below leaseTtlMs, or leases expire before they are renewed",
      path: ["leaseRenewMs"],
    })
    .prefault({}),
  worker: z
    .strictObject({
      concurrency: intInRange(1, 1024).default(16),
      maxAttempts: intInRange(1, 100).default(5),
      backoffBaseMs: intInRange(1, 600_000).default(200),
      backoffMaxMs: intInRange(1, 3_600_000).default(30_000),
      ackWaitMs: intInRange(1000, 3_600_000).default(30_000),
      /** How long a simulated device takes per operation. */
      simLatencyMs: intInRange(0, 3_600_000).default(50),
      /** Probability (0–1) that a simulated operation fails transiently. */
      simFailureRate: z
        .preprocess(
          (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v),
          z
            .number({ error: "must be a number from 0 to 1" })
            .min(0, { error: "must be a number from 0 to 1" })
            .max(1, { error: "must be a number from 0 to 1" }),
        )
        .default(0),
    })
    .prefault({}),
  api: z
    .strictObject({
      /** Requests one tenant may make per window before it gets 429. */
      rateLimit: intInRange(1, 1_000_000).default(100),
      rateWindowMs: intInRange(100, 3_600_000).default(1000),
      /** How long an Idempotency-Key is remembered. */
      idempotencyTtlHours: intInRange(24, 24 * 30).default(24),
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
  { env: "DV_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", path: ["database", "idleInTransactionTimeoutMs"] },
  { env: "DV_PGLITE_DIR", path: ["database", "pgliteDir"] },
  { env: "NATS_URL", path: ["nats", "url"] },
  { env: "DV_NATS_PORT", path: ["nats", "port"] },
  { env: "DV_NATS_SERVER_BIN", path: ["nats", "serverBin"] },
  { env: "DV_NATS_STORE_DIR", path: ["nats", "storeDir"] },
  { env: "KUBECONFIG", path: ["kubernetes", "kubeconfig"] },
  { env: "DV_PLATFORM_CONFIG_DIR", path: ["platform", "configDir"] },
  { env: "DV_AUTH_ISSUER", path: ["auth", "issuer"] },
  { env: "DV_AUTH_AUDIENCE", path: ["auth", "audience"] },
  { env: "DV_AUTH_ALGORITHMS", path: ["auth", "algorithms"] },
  { env: "DV_AUTH_JWKS_URL", path: ["auth", "jwksUrl"] },
  { env: "DV_AUTH_PUBLIC_KEY_FILE", path: ["auth", "publicKeyFile"] },
  { env: "DV_AUTH_DEV_KEY_FILE", path: ["auth", "devKeyFile"] },
  { env: "DV_CONTROLLER_SHARDS", path: ["controller", "shards"] },
  { env: "DV_LEASE_TTL_MS", path: ["controller", "leaseTtlMs"] },
  { env: "DV_LEASE_RENEW_MS", path: ["controller", "leaseRenewMs"] },
  { env: "DV_LEASE_RETRY_MS", path: ["controller", "leaseRetryMs"] },
  { env: "DV_RESYNC_MS", path: ["controller", "resyncMs"] },
  { env: "DV_CONTROLLER_CONCURRENCY", path: ["controller", "concurrency"] },
  { env: "DV_REDISPATCH_AFTER_MS", path: ["controller", "redispatchAfterMs"] },
  { env: "DV_OBSERVE_EVERY_MS", path: ["controller", "observeEveryMs"] },
  { env: "DV_WORKER_CONCURRENCY", path: ["worker", "concurrency"] },
  { env: "DV_WORKER_MAX_ATTEMPTS", path: ["worker", "maxAttempts"] },
  { env: "DV_WORKER_BACKOFF_BASE_MS", path: ["worker", "backoffBaseMs"] },
  { env: "DV_WORKER_BACKOFF_MAX_MS", path: ["worker", "backoffMaxMs"] },
  { env: "DV_WORKER_ACK_WAIT_MS", path: ["worker", "ackWaitMs"] },
  { env: "DV_SIM_LATENCY_MS", path: ["worker", "simLatencyMs"] },
  { env: "DV_SIM_FAILURE_RATE", path: ["worker", "simFailureRate"] },
  { env: "DV_API_RATE_LIMIT", path: ["api", "rateLimit"] },
  { env: "DV_API_RATE_WINDOW_MS", path: ["api", "rateWindowMs"] },
  { env: "DV_API_IDEMPOTENCY_TTL_HOURS", path: ["api", "idempotencyTtlHours"] },
];

/** Fields holding file-system paths, resolved against the working directory at load. */
export const PATH_FIELDS: readonly (readonly string[])[] = [
  ["database", "pgliteDir"],
  ["nats", "serverBin"],
  ["nats", "storeDir"],
  ["kubernetes", "kubeconfig"],
  ["platform", "configDir"],
  ["auth", "publicKeyFile"],
  ["auth", "devKeyFile"],
];
