import { type Backup, BackupStore, LeaseStore, type Restore } from "../contexts/runtime/index.js";
import { PlatformStore } from "../contexts/platform/index.js";
import { type Database, migrationStatus, OWNED_SCHEMAS } from "../db/index.js";
import { BACKUP_CONTEXTS } from "./facts.js";
import {
  assessRecovery,
  type ContextRecovery,
  type RecoveryPolicySpec,
  type ReplicaStatus,
} from "./recovery.js";

/** What an operator needs to know about the system of record, as `dv db status` shows it. */
export interface DatabaseStatus {
  readonly engine: "postgres" | "pglite";
  /** Where it is, without credentials. */
  readonly target: string;
  readonly serverVersion: string;
  /** `replica` when the server is in recovery (a standby): it refuses writes. */
  readonly role: "primary" | "replica";
  readonly sizeBytes: number;
  readonly connections: {
    readonly total: number;
    readonly max: number;
    readonly active: number;
    /** Sessions by `application_name` (`dv-api`, `dv-controller-leases`, …). */
    readonly byApplication: readonly { readonly name: string; readonly count: number }[];
  };
  /** Replicas of a primary; on a replica, how far behind its primary's last commit it is. */
  readonly replication: {
    readonly replicas: readonly ReplicaStatus[];
    readonly replayLagSeconds: number | null;
  };
  /** The control plane's schemas: tables and bytes (with indexes and TOAST). */
  readonly schemas: readonly {
    readonly name: string;
    readonly tables: number;
    readonly bytes: number;
  }[];
  readonly migrations: {
    readonly applied: number;
    readonly available: number;
    readonly latest: string | null;
  };
  /** Controller replicas whose lease membership is live: processes using the database. */
  readonly liveReplicas: readonly string[];
  readonly lastBackup: Backup | null;
  /** The newest backups first, of any state. */
  readonly backups: readonly Backup[];
  readonly restores: readonly Restore[];
  /** Each bounded context's RecoveryPolicy next to the facts: loss now, promotion safety. */
  readonly recovery: readonly ContextRecovery[];
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * Reads the database's health and recovery state: server, role, size, connections, replication,
 * schemas, migrations, and its catalogue of backups and restores. Read-only; works on a server and
 * on the embedded PGlite.
 */
export async function databaseStatus(
  db: Database,
  options: { backups?: number; now?: Date } = {},
): Promise<DatabaseStatus> {
  const [server] = await db.query<{
    version: string;
    in_recovery: boolean;
    bytes: string | number;
    max_connections: string | number;
  }>(
    `SELECT current_setting('server_version') AS version, pg_is_in_recovery() AS in_recovery,
            pg_database_size(current_database()) AS bytes,
            current_setting('max_connections') AS max_connections`,
  );
  const sessions = await db.query<{ name: string; state: string | null; count: string | number }>(
    `SELECT coalesce(nullif(application_name, ''), '(unnamed)') AS name, state, count(*) AS count
       FROM pg_stat_activity
      WHERE datname = current_database() AND backend_type = 'client backend'
      GROUP BY 1, 2`,
  );
  const byApplication = new Map<string, number>();
  for (const s of sessions)
    byApplication.set(s.name, (byApplication.get(s.name) ?? 0) + num(s.count));
  const replica = server?.in_recovery === true;
  const replicas = replica
    ? []
    : await db.query<{
        name: string;
        client_addr: string | null;
        state: string;
        sync_state: string;
        lag_bytes: string | number | null;
        replay_lag_seconds: string | number | null;
      }>(
        `SELECT application_name AS name, client_addr::text AS client_addr, state, sync_state,
                pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS lag_bytes,
                extract(epoch FROM replay_lag) AS replay_lag_seconds
           FROM pg_stat_replication ORDER BY 1`,
      );
  const [lag] = replica
    ? await db.query<{ seconds: string | number | null }>(
        "SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp()) AS seconds",
      )
    : [];
  const schemas = await db.query<{ name: string; tables: string | number; bytes: string | number }>(
    `SELECT n.nspname AS name,
            count(*) FILTER (WHERE c.relkind IN ('r', 'p')) AS tables,
            coalesce(sum(pg_total_relation_size(c.oid)) FILTER (WHERE c.relkind IN ('r', 'p', 'm')), 0) AS bytes
       FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid
      WHERE n.nspname = ANY($1::text[])
      GROUP BY n.nspname ORDER BY n.nspname`,
    [OWNED_SCHEMAS],
  );
  const migrations = await migrationStatus(db);
  const store = new BackupStore(db);
  const backups = await store.list(options.backups ?? 5);
  const [lastBackup] = await store.list(1, "succeeded");
  const restores = await store.listRestores(3);
  const leases = await new LeaseStore(db).overview();
  const policies = (await new PlatformStore(db).list("RecoveryPolicy")).map(
    (o) => o.spec as unknown as RecoveryPolicySpec,
  );
  const succeeded = await store.list(100, "succeeded");
  const replicaRows = replicas.map((r) => ({
    name: r.name,
    clientAddr: r.client_addr,
    state: r.state,
    syncState: r.sync_state,
    lagBytes: numOrNull(r.lag_bytes),
    replayLagSeconds: numOrNull(r.replay_lag_seconds),
  }));
  const recovery = assessRecovery(BACKUP_CONTEXTS, policies, {
    role: replica ? "replica" : "primary",
    replicas: replicaRows,
    replayLagSeconds: numOrNull(lag?.seconds),
    backups: succeeded,
    now: options.now ?? new Date(),
  });
  return {
    engine: db.dialect,
    target: db.target,
    serverVersion: server?.version ?? "unknown",
    role: replica ? "replica" : "primary",
    sizeBytes: num(server?.bytes),
    connections: {
      total: sessions.reduce((sum, s) => sum + num(s.count), 0),
      max: num(server?.max_connections),
      active: sessions
        .filter((s) => s.state === "active")
        .reduce((sum, s) => sum + num(s.count), 0),
      byApplication: [...byApplication]
        .map(([name, count]) => ({ name, count }))
        .sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)),
    },
    replication: {
      replicas: replicaRows,
      replayLagSeconds: numOrNull(lag?.seconds),
    },
    schemas: schemas.map((s) => ({ name: s.name, tables: num(s.tables), bytes: num(s.bytes) })),
    migrations: {
      applied: migrations.applied,
      available: migrations.available,
      latest: migrations.latest ?? null,
    },
    liveReplicas: leases.members.filter((m) => m.live).map((m) => m.holder),
    lastBackup: lastBackup ?? null,
    backups,
    restores,
    recovery,
  };
}
