// Applying a directory of platform configuration once, in the order kinds refer to each other:
// what a process without a cluster does at start, before its platform controllers watch.
import type { Logger } from "../../src/observability/index.js";
import { readPlatformDirectory } from "../../src/platform-config/index.js";
import { APPLY_ORDER, PlatformSync, type PlatformSyncStores } from "./sync.js";

/** What {@link syncPlatformDirectory} applied, by kind, and how many objects it refused. */
export interface PlatformDirectorySummary {
  readonly applied: Map<string, number>;
  readonly refused: number;
}

/**
 * Applies a directory of platform configuration (the embedded default, or a GitOps checkout)
 * to the platform and inventory contexts, kinds that others refer to first. Returns a summary
 * per kind; refused objects are logged with their reason.
 */
export async function syncPlatformDirectory(
  stores: PlatformSyncStores,
  dir: string,
  log: Logger,
): Promise<PlatformDirectorySummary> {
  const docs = await readPlatformDirectory(dir);
  const order = (kind: string) => {
    const i = APPLY_ORDER.indexOf(kind);
    return i < 0 ? APPLY_ORDER.length : i;
  };
  docs.sort((a, b) => order(a.kind) - order(b.kind));
  const sync = new PlatformSync(stores);
  const applied = new Map<string, number>();
  let refused = 0;
  for (const doc of docs) {
    const result = await sync.apply({
      kind: doc.kind,
      name: doc.name,
      generation: doc.generation,
      spec: (doc.raw as { spec?: unknown }).spec,
    });
    if (result.ok) {
      applied.set(doc.kind, (applied.get(doc.kind) ?? 0) + 1);
    } else {
      refused++;
      log.warn(
        { kind: doc.kind, name: doc.name, file: doc.file, reason: result.reason },
        result.message,
      );
    }
  }
  log.info(
    { dir, applied: Object.fromEntries(applied), refused },
    "platform configuration applied",
  );
  return { applied, refused };
}
