import { createHash } from "node:crypto";
import { createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { z } from "zod";
import type { Backup } from "../contexts/runtime/index.js";
import { BackupError, BackupErrorCode, OWNED_SCHEMAS, SNAPSHOT_EXTENSIONS } from "../db/index.js";
import { BACKUP_CONTEXTS } from "./facts.js";

/** The name of the manifest in a backup directory. */
export const MANIFEST_FILE = "manifest.json";

/**
 * What a backup directory holds and how to check it: written by `dv db backup` next to the
 * snapshot, read and verified by `dv db restore` before anything is changed.
 */
export const BackupManifest = z.object({
  apiVersion: z.literal("dataverket.io/v1"),
  kind: z.literal("DatabaseBackup"),
  id: z.string().min(1),
  scope: z.enum(["database", ...BACKUP_CONTEXTS]),
  /** The schemas in the snapshot. */
  schemas: z.array(z.string()).min(1),
  format: z.enum(["pg_dump", "pglite"]),
  takenAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  /** The newest write to tenants, resources and tasks in the snapshot. */
  dataAsOf: z.iso.datetime().nullable(),
  serverVersion: z.string().nullable(),
  latestMigration: z.string().nullable(),
  actor: z.string(),
  /** Rows per table, read in the snapshot itself; null when they could not be (PGlite). */
  tables: z.record(z.string(), z.number().int().nonnegative()).nullable(),
  files: z
    .array(
      z.object({
        name: z.string().regex(/^[\w.-]+$/, "a file name in the backup directory"),
        bytes: z.number().int().nonnegative(),
        sha256: z.string().regex(/^[0-9a-f]{64}$/, "64 hex digits"),
      }),
    )
    .length(1),
});
export type BackupManifest = z.infer<typeof BackupManifest>;

/** The snapshot's name in its backup directory: `database.dump`, `inventory.dump`, … */
export function snapshotFileName(scope: string, format: keyof typeof SNAPSHOT_EXTENSIONS): string {
  return `${scope}.${SNAPSHOT_EXTENSIONS[format]}`;
}

/** The manifest of a backup that succeeded, from its record; undefined before it has. */
export function manifestOf(b: Backup): BackupManifest | undefined {
  if (b.state !== "succeeded" || b.bytes === null || b.sha256 === null || !b.finishedAt)
    return undefined;
  const format = b.format as BackupManifest["format"];
  return {
    apiVersion: "dataverket.io/v1",
    kind: "DatabaseBackup",
    id: b.id,
    scope: b.scope as BackupManifest["scope"],
    schemas: b.scope === "database" ? [...OWNED_SCHEMAS] : [b.scope],
    format,
    takenAt: b.startedAt.toISOString(),
    finishedAt: b.finishedAt.toISOString(),
    dataAsOf: b.dataAsOf?.toISOString() ?? null,
    serverVersion: b.serverVersion,
    latestMigration: b.latestMigration,
    actor: b.actor,
    tables: b.tables,
    files: [{ name: snapshotFileName(b.scope, format), bytes: b.bytes, sha256: b.sha256 }],
  };
}

/** SHA-256 and size of a file, read as a stream. */
export async function digestOf(file: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { bytes, sha256: hash.digest("hex") };
}

/** A backup directory, read and verified: its manifest and the snapshot file in it. */
export interface VerifiedBackup {
  readonly dir: string;
  readonly manifest: BackupManifest;
  readonly file: string;
}

/**
 * Reads the manifest of a backup directory (or of the directory a file of it is in) and checks
 * the snapshot against it: size and SHA-256.
 *
 * @throws {BackupError} `DV_BACKUP_WRONG_FORMAT` (no manifest, or one that does not parse, naming
 *   the field), `DV_BACKUP_MANIFEST_MISMATCH` (a file missing or different).
 */
export async function readBackup(path: string): Promise<VerifiedBackup> {
  const dir = statSync(path).isDirectory() ? path : dirname(path);
  const at = join(dir, MANIFEST_FILE);
  if (!existsSync(at)) {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${path} is not a Dataverket backup: expected a directory with ${MANIFEST_FILE} in it (what dv db backup writes)`,
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(at, "utf8"));
  } catch (err) {
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${at} is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const parsed = BackupManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BackupError(
      BackupErrorCode.WrongFormat,
      `${at}: ${issue?.path.join(".") || "(the document)"}: ${issue?.message ?? "invalid"}`,
    );
  }
  const manifest = parsed.data;
  const [entry] = manifest.files;
  if (!entry) throw new BackupError(BackupErrorCode.WrongFormat, `${at} names no file`);
  const file = join(dir, basename(entry.name));
  if (!existsSync(file)) {
    throw new BackupError(
      BackupErrorCode.ManifestMismatch,
      `${file} is missing: the manifest names it (${entry.bytes} bytes)`,
    );
  }
  const actual = await digestOf(file);
  if (actual.bytes !== entry.bytes || actual.sha256 !== entry.sha256) {
    throw new BackupError(
      BackupErrorCode.ManifestMismatch,
      `${file} does not match the manifest (${actual.bytes} bytes, sha256 ${actual.sha256}; the manifest says ${entry.bytes} bytes, sha256 ${entry.sha256}): it is damaged or incomplete; nothing was changed`,
    );
  }
  return { dir, manifest, file };
}
