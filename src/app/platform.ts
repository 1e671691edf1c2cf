import { APPLY_ORDER, PlatformSync } from "../../controllers/index.js";
import type { Logger } from "../observability/index.js";
import { readPlatformDirectory } from "../platform-config/index.js";
import type { Services } from "./services.js";

/**
 * Applies a directory of platform configuration (the embedded default, or a GitOps checkout)
 * to the platform and inventory contexts, kinds that others refer to first. Returns a summary
 * per kind; refused objects are logged with their reason.
 */
export async function syncPlatformDirectory(
  services: Services,
  dir: string,
  log: Logger,
): Promise<{ applied: Map<string, number>; refused: number }> {
  const docs = await readPlatformDirectory(dir);
  const order = (kind: string) => {
    const i = APPLY_ORDER.indexOf(kind);
    return i < 0 ? APPLY_ORDER.length : i;
  };
  docs.sort((a, b) => order(a.kind) - order(b.kind));
  const sync = new PlatformSync(services);
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
