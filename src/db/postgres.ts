import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { StartupError, StartupErrorCode } from "../lifecycle/index.js";
import type { Logger } from "../observability/index.js";
import { Transform } from "node:stream";
import {
  pgDumpSnapshot,
  type Snapshot,
  type SnapshotOptions,
  type SnapshotQuery,
} from "./backup.js";
import type { Database, IsolationLevel, Orm, Tx, Unlisten } from "./database.js";
import { MigrationError } from "./errors.js";
import { PgListener } from "./listener.js";
import { TransactionPipeline } from "./pipeline.js";

/** Advisory-lock key that serialises migrators of one database ("dv-migrate"). */
const MIGRATION_LOCK = 0x64762d6d;

/** Options of {@link connectPostgres}. */
export interface ConnectPostgresOptions {
  readonly url: string;
  readonly poolMax: number;
  readonly log: Logger;
  /** How the URL was configured, named in errors (`DATABASE_URL`). */
  readonly source?: string;
  readonly connectTimeoutMs?: number;
  /** `application_name` shown in `pg_stat_activity`. */
  readonly applicationName?: string;
  /** Ends sessions idle in a transaction this long (PostgreSQL's idle_in_transaction_session_timeout). */
  readonly idleInTransactionTimeoutMs?: number;
  /** Directory of `pg_dump` for {@link Database.snapshot}; `PATH` when unset. */
  readonly pgBinDir?: string | undefined;
}

const SQLSTATE_REJECTIONS: Readonly<Record<string, string>> = {
  "28P01": "password authentication failed",
  "28000": "the login was rejected (pg_hba.conf or role)",
  "3D000": "the database does not exist",
  "42501": "the role may not connect",
};

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ECONNRESET",
  "EAI_AGAIN",
  "57P03", // the server is starting up or shutting down
]);

function describeTarget(url: string): { target: string; user: string; database: string } {
  const parsed = new URL(url);
  const host = parsed.hostname || "localhost";
  const port = parsed.port || "5432";
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, "")) || "postgres";
  const user = decodeURIComponent(parsed.username) || "postgres";
  return { target: `${host}:${port}/${database}`, user, database };
}

/**
 * Maps a connection failure onto a one-line {@link StartupError}, branching on the error code
 * (errno or SQLSTATE), never on message text.
 */
export function postgresStartupError(err: unknown, url: string, source: string): StartupError {
  const { target, user, database } = describeTarget(url);
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && code in SQLSTATE_REJECTIONS) {
    const hint =
      code === "3D000"
        ? `create it (createdb ${database}) or point ${source} at an existing database`
        : `check the user "${user}" and password in ${source}`;
    return new StartupError(
      StartupErrorCode.PostgresRejected,
      `PostgreSQL at ${target} refused the connection: ${SQLSTATE_REJECTIONS[code]} (SQLSTATE ${code})`,
      hint,
      { cause: err },
    );
  }
  const reason =
    typeof code === "string" && NETWORK_CODES.has(code) ? code : "no answer before the timeout";
  return new StartupError(
    StartupErrorCode.PostgresUnreachable,
    `cannot reach PostgreSQL at ${target} (${source}): ${reason}`,
    `start it (bash hack/postgres.sh start for the test server) or fix ${source}; unset it to use the embedded PGlite`,
    { cause: err },
  );
}

/**
 * Opens a connection pool to a PostgreSQL server and checks that it answers.
 *
 * @throws {StartupError} `DV_POSTGRES_UNREACHABLE` or `DV_POSTGRES_REJECTED`, naming the server.
 */
export async function connectPostgres(options: ConnectPostgresOptions): Promise<Database> {
  const source = options.source ?? "DATABASE_URL";
  const { target } = describeTarget(options.url);
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
    application_name: options.applicationName ?? "dataverket",
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 10_000,
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on("error", (err) => options.log.warn({ err }, "idle PostgreSQL connection failed"));
  // So does a checked-out client whose server goes away between two statements (a restart, a
  // terminated backend while a transaction waits on something else): the pool listens only to
  // idle ones. The transaction's next statement fails with the error, and the pool drops the
  // client when it is released.
  pool.on("connect", (client) =>
    client.on("error", (err) =>
      options.log.warn({ err }, "PostgreSQL connection failed while in use"),
    ),
  );

  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw postgresStartupError(err, options.url, source);
  }

  // A pooled connection keeps the session role of the last context that read through it, so a
  // read costs one round trip unless it has to switch roles. Transactions override it with
  // SET LOCAL ROLE; migrations reset it.
  const sessionRole = new WeakMap<pg.PoolClient, string>();
  // One drizzle instance per pooled connection, bound to it (reads and transactions).
  const clientOrm = new WeakMap<pg.PoolClient, Orm>();
  const ormOf = (client: pg.PoolClient): Orm => {
    let bound = clientOrm.get(client);
    if (!bound) {
      bound = drizzle({ client, casing: "snake_case" });
      clientOrm.set(client, bound);
    }
    return bound;
  };
  const listener = new PgListener(
    () =>
      new pg.Client({
        connectionString: options.url,
        application_name: `${options.applicationName ?? "dataverket"}-listen`,
      }),
    options.log,
  );

  return {
    dialect: "postgres",
    target,
    async transaction<T>(fn: (tx: Tx) => Promise<T>, isolationLevel?: IsolationLevel): Promise<T> {
      // The client is checked out here, not by drizzle: drizzle's own checkout sends BEGIN
      // before its try, so a connection that fails on BEGIN was never released, and a pool
      // lost one client for good on every such failure (the lease pool, of two, died after two
      // network faults). Released here whatever happens; pg-pool drops it if it is broken.
      const client = await pool.connect();
      try {
        return await TransactionPipeline.of(client).during(() =>
          ormOf(client).transaction(fn, isolationLevel ? { isolationLevel } : undefined),
        );
      } finally {
        client.release();
      }
    },
    async read<T>(role: string, fn: (orm: Orm) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      let healthy = true;
      try {
        if (sessionRole.get(client) !== role) {
          await client.query(`SET ROLE ${pg.escapeIdentifier(role)}`);
          sessionRole.set(client, role);
        }
        return await fn(ormOf(client));
      } catch (err) {
        // A connection-level failure must not return the client to the pool.
        healthy = typeof (err as { code?: unknown }).code === "string";
        throw err;
      } finally {
        client.release(healthy ? undefined : true);
      }
    },
    async query<Row extends Record<string, unknown>>(text: string, params?: readonly unknown[]) {
      const client = await pool.connect();
      try {
        if (sessionRole.has(client)) {
          await client.query("RESET ROLE");
          sessionRole.delete(client);
        }
        const result = await client.query<Row>(text, params as unknown[] | undefined);
        return result.rows;
      } finally {
        client.release();
      }
    },
    listen(channel: string, handler: (payload: string) => void): Promise<Unlisten> {
      return listener.listen(channel, handler);
    },
    sync(): Promise<number> {
      return listener.sync();
    },
    async migrate(folder: string) {
      // One connection holds the advisory lock and runs the migrations, so two processes
      // starting at once do not both apply them.
      const client = await pool.connect();
      try {
        await client.query("RESET ROLE");
        sessionRole.delete(client);
        await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
        try {
          await migrate(drizzle({ client, casing: "snake_case" }), { migrationsFolder: folder });
        } catch (err) {
          throw new MigrationError(err);
        } finally {
          await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]);
        }
      } finally {
        client.release();
      }
    },
    poolStats() {
      return {
        total: pool.totalCount,
        idle: pool.idleCount,
        waiting: pool.waitingCount,
        max: options.poolMax,
      };
    },
    async snapshot<Facts>(wanted: SnapshotOptions<Facts>): Promise<Snapshot<Facts>> {
      // One read-only repeatable-read transaction exports its snapshot: the facts are read in
      // it, and pg_dump imports it, so both see exactly the same data. The transaction has to
      // stay open until pg_dump has taken the snapshot over, which it does before its first byte.
      const client = await pool.connect();
      let release = (): void => client.release();
      try {
        await client.query("RESET ROLE");
        sessionRole.delete(client);
        await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        const [exported] = (await client.query<{ id: string }>("SELECT pg_export_snapshot() AS id"))
          .rows;
        const query: SnapshotQuery = async <Row extends Record<string, unknown>>(
          text: string,
          params?: readonly unknown[],
        ) => (await client.query<Row>(text, params as unknown[] | undefined)).rows;
        const facts = await wanted.inspect(query, true);
        const dump = pgDumpSnapshot({
          url: options.url,
          binDir: options.pgBinDir,
          schemas: wanted.schemas,
          snapshotId: exported?.id,
        });
        let first: () => void = () => undefined;
        const begun = new Promise<void>((resolve) => (first = resolve));
        const stream = new Transform({
          transform(chunk: Buffer, _encoding, callback) {
            first();
            callback(null, chunk);
          },
        });
        dump.stream.on("error", (err) => stream.destroy(err));
        dump.stream.pipe(stream);
        const ended = (): void => {
          const done = client.query("COMMIT").then(
            () => client.release(),
            (err: Error) => client.release(err),
          );
          done.catch(() => undefined);
        };
        release = () => undefined;
        // Either way the transaction ends: once the dump began (it holds the snapshot itself
        // now), or when it failed before that.
        void Promise.race([begun, dump.done]).then(ended, ended);
        return { ...dump, stream, facts, exact: true };
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      } finally {
        release();
      }
    },
    async ping() {
      await pool.query("SELECT 1");
    },
    async close() {
      await listener.close();
      await pool.end();
    },
  };
}
