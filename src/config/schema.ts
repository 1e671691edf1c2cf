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

/** A share from 0 to 1, from YAML or from an environment variable's text. */
const ratio = z.preprocess(
  (v) => (typeof v === "string" && v.trim() !== "" ? Number(v) : v),
  z
    .number({ error: "must be a number from 0 to 1" })
    .min(0, { error: "must be a number from 0 to 1" })
    .max(1, { error: "must be a number from 0 to 1" }),
);

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
      /** Directory of `pg_dump`, `pg_restore` and `psql`; `PATH` when absent. */
      pgBinDir: path.optional(),
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
      /**
       * Datacenters whose own NATS this one reaches over the site link (a leaf node): commands
       * for them are published on `dv.site.<datacenter>.<service>.cmd.<action>`.
       */
      remoteDatacenters: z.preprocess(commaList, z.array(dnsLabel)).default([]),
      /**
       * How long the outbox keeps a published event: longer than the nats-server's
       * `sync_interval`, so an event a crash loses is still there to be sent again (ADR 0012).
       */
      outboxRetainMs: intInRange(1000, 3_600_000).default(10_000),
    })
    .prefault({}),
  kubernetes: z
    .strictObject({
      /** A kubeconfig; when absent platform configuration is read from `platform.configDir`. */
      kubeconfig: path.optional(),
      /** Use the pod's service account (in a cluster) instead of a kubeconfig. */
      inCluster: z.union([z.boolean(), z.stringbool()]).default(false),
      /** Namespace of the leader-election Lease; in a cluster, the pod's own by default. */
      namespace: dnsLabel.optional(),
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
      /** The longest lifetime (`exp` − `iat`) a bearer token may have; a longer one is refused. */
      maxTokenLifetimeHours: intInRange(1, 720).default(24),
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
      simFailureRate: ratio.default(0),
    })
    .prefault({}),
  tracing: z
    .strictObject({
      /** An OTLP/HTTP endpoint (an OpenTelemetry Collector, Jaeger, Tempo); no traces when absent. */
      otlpEndpoint: urlWithProtocols(["http:", "https:"]).optional(),
      /** Share of new traces exported. */
      sampleRatio: ratio.default(1),
    })
    .prefault({}),
  api: z
    .strictObject({
      /** Requests one tenant may make per window before it gets 429. */
      rateLimit: intInRange(1, 1_000_000).default(100),
      rateWindowMs: intInRange(100, 3_600_000).default(1000),
      /** How long an Idempotency-Key is remembered. */
      idempotencyTtlHours: intInRange(24, 24 * 30).default(24),
      /** How long admission checks requests against one read of the platform configuration. */
      admissionCacheMs: intInRange(0, 60_000).default(2000),
    })
    .prefault({}),
});

/** The validated, frozen process configuration. */
export type Config = z.output<typeof configSchema>;

/** How one environment variable maps onto a configuration field. */
export interface EnvBinding {
  readonly env: string;
  readonly path: readonly string[];
  /**
   * What the setting does, in plain words: the allowed values or range the schema enforces, the
   * unit, and what happens when it is unset if it has no default. Rendered into
   * docs/generated/configuration.md.
   */
  readonly description: string;
}

/** Every environment variable the control plane reads, and the field it sets. */
export const ENV_BINDINGS: readonly EnvBinding[] = [
  {
    env: "DV_DATACENTER_ID",
    path: ["datacenterId"],
    description:
      "The datacenter this process belongs to, written on every log line and on the controller's lease membership. A DNS label: lower-case letters, digits and `-`, 1 to 63 characters.",
  },
  {
    env: "DV_LOG_LEVEL",
    path: ["log", "level"],
    description:
      "Lowest level of the JSON log lines written to stdout: `trace`, `debug`, `info`, `warn`, `error`, `fatal`, or `silent` (no logging).",
  },
  {
    env: "DV_HTTP_HOST",
    path: ["http", "host"],
    description:
      "Address the HTTP server binds: the API (for `dv api` and `dv dev`) and `/healthz`, `/readyz`, `/metrics` of every role. A host name or IP address.",
  },
  {
    env: "DV_HTTP_PORT",
    path: ["http", "port"],
    description:
      "Port of the HTTP server, 0 to 65535; `0` picks a free port. `--port` overrides it.",
  },
  {
    env: "DV_HTTP_BODY_LIMIT_BYTES",
    path: ["http", "bodyLimitBytes"],
    description:
      "Largest request body accepted, in bytes, 1024 to 67108864 (64 MiB); a larger body is answered with 413.",
  },
  {
    env: "DATABASE_URL",
    path: ["database", "url"],
    description:
      "The PostgreSQL server that is the system of record, a `postgres://` or `postgresql://` URL. When unset, `dv dev` embeds PGlite in `database.pgliteDir`, and `dv api`, `dv controller` and `dv worker` refuse to start.",
  },
  {
    env: "DV_DB_POOL_MAX",
    path: ["database", "poolMax"],
    description:
      "PostgreSQL connections in the process's pool, 1 to 500. A controller opens a second pool of 2 connections of its own for lease renewals.",
  },
  {
    env: "DV_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS",
    path: ["database", "idleInTransactionTimeoutMs"],
    description:
      "PostgreSQL ends a session that stays idle inside a transaction this long, in milliseconds, 1000 to 3600000: a paused process cannot hold locks (a shard's lease row) for longer.",
  },
  {
    env: "DV_PGLITE_DIR",
    path: ["database", "pgliteDir"],
    description:
      "Data directory of the embedded PGlite database that `dv dev` uses when `DATABASE_URL` is unset. Relative paths are resolved against the working directory.",
  },
  {
    env: "DV_PG_BIN_DIR",
    path: ["database", "pgBinDir"],
    description:
      "Directory of the PostgreSQL client programs `pg_dump` (for `dv db backup`, run by the API process), `pg_restore` and `psql` (for `dv db restore`); of the server's major version or newer. When unset, they are looked up on `PATH`. Relative paths are resolved against the working directory.",
  },
  {
    env: "NATS_URL",
    path: ["nats", "url"],
    description:
      "The nats-server(s) to connect to: one or more comma-separated `nats://` or `tls://` URLs. When unset, `dv dev` spawns its own nats-server, and `dv controller` and `dv worker` refuse to start.",
  },
  {
    env: "DV_NATS_PORT",
    path: ["nats", "port"],
    description:
      "Client port of the nats-server that `dv dev` spawns when `NATS_URL` is unset, 0 to 65535; `0` picks a free port.",
  },
  {
    env: "DV_NATS_SERVER_BIN",
    path: ["nats", "serverBin"],
    description:
      "The nats-server binary `dv dev` spawns. When unset, `.cache/bin/nats-server` of the checkout (built by `hack/nats.sh install`), then `nats-server` on `PATH`.",
  },
  {
    env: "DV_NATS_STORE_DIR",
    path: ["nats", "storeDir"],
    description:
      "JetStream store directory of the nats-server that `dv dev` spawns. Relative paths are resolved against the working directory.",
  },
  {
    env: "DV_OUTBOX_RETAIN_MS",
    path: ["nats", "outboxRetainMs"],
    description:
      "How long the outbox keeps an event after JetStream acknowledged it, so that one the nats-server loses in a crash is sent again (commands are kept until a worker records them done). Keep it well above the nats-server's `sync_interval` (1 s in the servers `hack/` and `dv dev` start; NATS's own default is 2 min).",
  },
  {
    env: "DV_NATS_REMOTE_DATACENTERS",
    path: ["nats", "remoteDatacenters"],
    description:
      "Comma-separated datacenters that have NATS servers of their own, linked to this one (leaf nodes): commands for their infrastructure are published on the coordination subject `dv.site.<datacenter>.<service>.cmd.<action>`, which only that site's JetStream stores. Empty (the default): one NATS for every datacenter.",
  },
  {
    env: "KUBECONFIG",
    path: ["kubernetes", "kubeconfig"],
    description:
      "A kubeconfig file of the cluster that holds the platform configuration. When set, `dv controller` does not apply `platform.configDir` at start; when unset, platform configuration is read from `platform.configDir`.",
  },
  {
    env: "DV_KUBE_IN_CLUSTER",
    path: ["kubernetes", "inCluster"],
    description:
      "`true`: read platform configuration from the cluster the process runs in, with the pod's service account (what the Helm chart sets). Takes precedence over `KUBECONFIG`.",
  },
  {
    env: "DV_KUBE_NAMESPACE",
    path: ["kubernetes", "namespace"],
    description:
      "Namespace of the `coordination.k8s.io` Lease the platform controllers elect their leader with. Default: the pod's namespace in a cluster, else `default`.",
  },
  {
    env: "DV_PLATFORM_CONFIG_DIR",
    path: ["platform", "configDir"],
    description:
      "Directory of platform-configuration YAML (the custom resources: datacenters, pools, …) that `dv dev`, and `dv controller` without a kubeconfig, apply at start. Relative paths are resolved against the working directory.",
  },
  {
    env: "DV_AUTH_ISSUER",
    path: ["auth", "issuer"],
    description: "The `iss` claim every bearer token must carry.",
  },
  {
    env: "DV_AUTH_AUDIENCE",
    path: ["auth", "audience"],
    description: "The `aud` claim every bearer token must carry.",
  },
  {
    env: "DV_AUTH_ALGORITHMS",
    path: ["auth", "algorithms"],
    description:
      "JWS algorithms accepted on bearer tokens, comma-separated, at least one of `ES256`, `ES384`, `EdDSA`, `RS256`, `PS256` (asymmetric only). The first is the algorithm of the key in `DV_AUTH_PUBLIC_KEY_FILE`.",
  },
  {
    env: "DV_AUTH_JWKS_URL",
    path: ["auth", "jwksUrl"],
    description:
      "An `https://` or `http://` URL of the identity provider's JWKS, where token verification keys come from; it wins over `DV_AUTH_PUBLIC_KEY_FILE`. When unset, the public key file is used; `dv api` needs one of the two.",
  },
  {
    env: "DV_AUTH_PUBLIC_KEY_FILE",
    path: ["auth", "publicKeyFile"],
    description:
      "A PEM public key file that verifies bearer tokens, used when `DV_AUTH_JWKS_URL` is unset. When both are unset, `dv api` refuses to start, and `dv dev` verifies tokens with its development key.",
  },
  {
    env: "DV_AUTH_DEV_KEY_FILE",
    path: ["auth", "devKeyFile"],
    description:
      "The development signing key of `dv dev` and `dv token create`, created by `dv dev` when missing. Never used by `dv api`. Relative paths are resolved against the working directory.",
  },
  {
    env: "DV_AUTH_MAX_TOKEN_LIFETIME_HOURS",
    path: ["auth", "maxTokenLifetimeHours"],
    description:
      "The longest lifetime a bearer token may have (`exp` minus `iat`), in hours, 1 to 720; a token valid for longer, or issued more than 30 seconds in the future, is answered 401. `dv token create --ttl` and `dv dev`'s operator token (12 h) stay within it.",
  },
  {
    env: "DV_CONTROLLER_SHARDS",
    path: ["controller", "shards"],
    description:
      "Number of shards the resource keys are spread over, 1 to 4096; each shard is leased by one controller replica at a time. Give every controller replica of one database the same value.",
  },
  {
    env: "DV_LEASE_TTL_MS",
    path: ["controller", "leaseTtlMs"],
    description:
      "How long a shard lease lasts after its last renewal, in milliseconds, 1000 to 600000; must be greater than `DV_LEASE_RENEW_MS`. A replica that could not renew gives the shard up at 90 % of it.",
  },
  {
    env: "DV_LEASE_RENEW_MS",
    path: ["controller", "leaseRenewMs"],
    description:
      "A held lease is renewed once it is this old, in milliseconds, 200 to 600000; must be less than `DV_LEASE_TTL_MS`.",
  },
  {
    env: "DV_LEASE_RETRY_MS",
    path: ["controller", "leaseRetryMs"],
    description:
      "Interval of the lease manager's rounds (renew, heartbeat, take free or expired shards, give back extras), in milliseconds, 100 to 600000, with ±20 % jitter.",
  },
  {
    env: "DV_RESYNC_MS",
    path: ["controller", "resyncMs"],
    description:
      "Every resource of the shards a replica holds is queued again this often, in milliseconds, 1000 to 86400000, with ±20 % jitter.",
  },
  {
    env: "DV_CONTROLLER_CONCURRENCY",
    path: ["controller", "concurrency"],
    description:
      "Reconcile passes run at once per resource kind, 1 to 1024. Tenant resources are reconciled in batches of up to 64 keys, one batch at a time per 8 of this (at least one).",
  },
  {
    env: "DV_REDISPATCH_AFTER_MS",
    path: ["controller", "redispatchAfterMs"],
    description:
      "A command with no answer after this long, in milliseconds, 1000 to 86400000, is sent again with the same id (so it is de-duplicated, never done twice).",
  },
  {
    env: "DV_OBSERVE_EVERY_MS",
    path: ["controller", "observeEveryMs"],
    description:
      "How often a ready network is asked for its actual configuration to detect drift, in milliseconds, 1000 to 86400000.",
  },
  {
    env: "DV_WORKER_CONCURRENCY",
    path: ["worker", "concurrency"],
    description: "Commands one worker handles at once, 1 to 1024.",
  },
  {
    env: "DV_WORKER_MAX_ATTEMPTS",
    path: ["worker", "maxAttempts"],
    description:
      "Attempts at a transiently failing command before it is dead-lettered and its task fails, 1 to 100. JetStream's delivery limit of the worker consumers is this plus 3.",
  },
  {
    env: "DV_WORKER_BACKOFF_BASE_MS",
    path: ["worker", "backoffBaseMs"],
    description:
      "First retry delay of a failed command, in milliseconds, 1 to 600000; the delay doubles with every attempt, is capped by `DV_WORKER_BACKOFF_MAX_MS`, and is drawn at random below that (full jitter).",
  },
  {
    env: "DV_WORKER_BACKOFF_MAX_MS",
    path: ["worker", "backoffMaxMs"],
    description: "Longest retry delay of a failed command, in milliseconds, 1 to 3600000.",
  },
  {
    env: "DV_WORKER_ACK_WAIT_MS",
    path: ["worker", "ackWaitMs"],
    description:
      "JetStream's ack wait of the worker consumers, in milliseconds, 1000 to 3600000: a command not acknowledged in this time is delivered again. A busy worker reports progress every third of it.",
  },
  {
    env: "DV_SIM_LATENCY_MS",
    path: ["worker", "simLatencyMs"],
    description:
      "How long the simulated driver takes per operation, in milliseconds, 0 to 3600000; from 2000 it reports progress in quarters.",
  },
  {
    env: "DV_SIM_FAILURE_RATE",
    path: ["worker", "simFailureRate"],
    description:
      "Probability that a simulated operation fails transiently, a number from 0 to 1 (0.1 fails one in ten).",
  },
  {
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    path: ["tracing", "otlpEndpoint"],
    description:
      "An OTLP/HTTP endpoint (an OpenTelemetry Collector, Jaeger, Grafana Tempo), an `http://` or `https://` URL like `http://127.0.0.1:4318`; spans are sent to its `/v1/traces` as protobuf. When unset, no spans are exported, but the W3C `traceparent` still travels from the API request through the outbox, NATS and the workers.",
  },
  {
    env: "DV_TRACE_SAMPLE_RATIO",
    path: ["tracing", "sampleRatio"],
    description:
      "Share of new traces exported, a number from 0 to 1 (0.1 keeps one in ten). A trace begun by the caller (a `traceparent` header with its sampled flag) keeps the caller's decision.",
  },
  {
    env: "DV_API_RATE_LIMIT",
    path: ["api", "rateLimit"],
    description:
      "Requests one tenant (an operator: one subject) may make per `DV_API_RATE_WINDOW_MS` before it is answered 429, 1 to 1000000.",
  },
  {
    env: "DV_API_RATE_WINDOW_MS",
    path: ["api", "rateWindowMs"],
    description: "The window of `DV_API_RATE_LIMIT`, in milliseconds, 100 to 3600000.",
  },
  {
    env: "DV_API_IDEMPOTENCY_TTL_HOURS",
    path: ["api", "idempotencyTtlHours"],
    description:
      "How long an `Idempotency-Key` and its first response are remembered, in hours, 24 to 720.",
  },
  {
    env: "DV_API_ADMISSION_CACHE_MS",
    path: ["api", "admissionCacheMs"],
    description:
      "How long the API checks the datacenters, machine classes and network pools a request names against one read of the platform configuration, in milliseconds, 0 to 60000 (0: read it for every request).",
  },
];

/** Fields holding file-system paths, resolved against the working directory at load. */
export const PATH_FIELDS: readonly (readonly string[])[] = [
  ["database", "pgliteDir"],
  ["database", "pgBinDir"],
  ["nats", "serverBin"],
  ["nats", "storeDir"],
  ["kubernetes", "kubeconfig"],
  ["platform", "configDir"],
  ["auth", "publicKeyFile"],
  ["auth", "devKeyFile"],
];
