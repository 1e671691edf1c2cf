/** PostgreSQL error codes (SQLSTATE) the control plane branches on. */
export const SqlState = {
  UniqueViolation: "23505",
  ExclusionViolation: "23P01",
  CheckViolation: "23514",
  ForeignKeyViolation: "23503",
  NotNullViolation: "23502",
  InsufficientPrivilege: "42501",
  SerializationFailure: "40001",
  DeadlockDetected: "40P01",
  LockNotAvailable: "55P03",
  ReadOnlyTransaction: "25006",
  QueryCanceled: "57014",
  AdminShutdown: "57P01",
  CannotConnectNow: "57P03",
  RaiseException: "P0001",
} as const;

interface PgErrorFields {
  code?: unknown;
  constraint?: unknown;
  table?: unknown;
  schema?: unknown;
  detail?: unknown;
  message?: unknown;
  cause?: unknown;
}

/** The first error in `err`'s cause chain that carries a SQLSTATE (drizzle wraps driver errors). */
function driverError(err: unknown): PgErrorFields | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth++) {
    const fields = e as PgErrorFields;
    if (typeof fields.code === "string" && /^[0-9A-Z]{5}$/.test(fields.code)) return fields;
    e = fields.cause;
  }
  return undefined;
}

/** The SQLSTATE of a PostgreSQL error from either driver, or undefined for other errors. */
export function sqlStateOf(err: unknown): string | undefined {
  return driverError(err)?.code as string | undefined;
}

/**
 * Whether `err` (or an error in its cause chain) is the connection pool giving up: every
 * connection stayed busy for the pool's connect timeout, so the statement was never sent.
 */
export function isPoolTimeout(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    // pg-pool's own error, which has no code.
    if (e.message === "timeout exceeded when trying to connect") return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

// Socket errors of a connection to the server, and what node-postgres says when one broke.
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
]);
const CONNECTION_MESSAGES = [
  "Connection terminated unexpectedly",
  "Connection terminated due to connection timeout",
  "Client has encountered a connection error and is not queryable",
  "timeout exceeded when trying to connect",
];

/**
 * Whether `err` (or an error in its cause chain) says the database could not be reached, rather
 * than refused what was asked: the server is down, restarting, shutting sessions down (SQLSTATE
 * class 08, 57P01–57P03), the connection broke, or the pool gave up waiting. Whatever was being
 * done may be tried again once it is back.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") {
      if (CONNECTION_CODES.has(code) || code.startsWith("08")) return true;
      if (code === "57P01" || code === "57P02" || code === "57P03") return true;
    }
    if (CONNECTION_MESSAGES.some((m) => e instanceof Error && e.message.includes(m))) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/**
 * Whether `err` is an outage of the database itself — it says it could not be reached, and the
 * database does not answer a trivial query now either — rather than one transaction's failure:
 * then every transaction would fail alike, and taking work apart to find the culprit is pointless.
 */
export async function isOutage(db: { ping(): Promise<void> }, err: unknown): Promise<boolean> {
  if (!isDatabaseUnavailable(err)) return false;
  return db.ping().then(
    () => false,
    () => true,
  );
}

/** The constraint a PostgreSQL integrity error names, if any. */
export function constraintOf(err: unknown): string | undefined {
  const name = driverError(err)?.constraint;
  return typeof name === "string" ? name : undefined;
}

/**
 * Thrown when PostgreSQL refuses a statement for a reason no context turned into a domain error.
 * The message is PostgreSQL's own (no query text, no parameters); the SQLSTATE is in `sqlState`.
 */
export class DatabaseError extends Error {
  override readonly name = "DatabaseError";
  readonly code = "DV_DATABASE";
  readonly sqlState: string | undefined;
  readonly constraint: string | undefined;

  constructor(err: unknown) {
    const fields = driverError(err);
    const message = typeof fields?.message === "string" ? fields.message : "database error";
    super(message, { cause: err });
    this.sqlState = fields?.code as string | undefined;
    this.constraint = typeof fields?.constraint === "string" ? fields.constraint : undefined;
  }
}

/** Thrown when applying migrations fails; the database is left as it was before the run. */
export class MigrationError extends Error {
  override readonly name = "MigrationError";
  readonly code = "DV_MIGRATION";
  readonly sqlState: string | undefined;

  constructor(err: unknown) {
    const fields = driverError(err);
    const reason = typeof fields?.message === "string" ? fields.message : String(err);
    const state = typeof fields?.code === "string" ? ` (SQLSTATE ${fields.code})` : "";
    super(`migration failed, nothing was applied: ${reason}${state}`, {
      cause: err,
    });
    this.sqlState = fields?.code as string | undefined;
  }
}

/** Stable codes of {@link BackupError}. */
export const BackupErrorCode = {
  /** `pg_dump`, `pg_restore` or `psql` is not installed where the process looks. */
  ToolMissing: "DV_BACKUP_TOOL_MISSING",
  /** The dump or restore tool ran and failed; its last error line is in the message. */
  ToolFailed: "DV_BACKUP_TOOL_FAILED",
  /** The file is not a backup this build can restore, or not into this kind of database. */
  WrongFormat: "DV_BACKUP_WRONG_FORMAT",
  /** The database is in use by running control-plane processes. */
  InUse: "DV_BACKUP_DATABASE_IN_USE",
  /** The database holds data written after the backup was taken; a restore would lose it. */
  NewerData: "DV_BACKUP_NEWER_DATA",
  /** The backup's files do not match its manifest (damaged, incomplete or edited). */
  ManifestMismatch: "DV_BACKUP_MANIFEST_MISMATCH",
  /** What was asked cannot be done with this database or backup (the message says why). */
  Unsupported: "DV_BACKUP_UNSUPPORTED",
} as const;
export type BackupErrorCode = (typeof BackupErrorCode)[keyof typeof BackupErrorCode];

/**
 * Thrown when a backup cannot be taken or a restore cannot be done; the message says what failed
 * and what to do. A failed restore changed nothing.
 */
export class BackupError extends Error {
  override readonly name = "BackupError";
  readonly code: BackupErrorCode;

  constructor(code: BackupErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
