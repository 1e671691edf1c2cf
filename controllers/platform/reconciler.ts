import type { Logger } from "../../src/observability/index.js";
import { type Reconciler, type ReconcileResult, TerminalError } from "../../src/reconcile/index.js";
import { type Condition, conditionsFor, type Summary, sameStatus } from "../common/status.js";
import { PLATFORM_FINALIZER, type PlatformObject, type PlatformSource } from "./source.js";
import type { PlatformSyncPort } from "./sync.js";

/** How long a deletion held by a pool in use waits before looking again. */
const IN_USE_RECHECK_MS = 5_000;

/**
 * One pass over a platform object (`<Kind>/<name>`): validate it, sync it into the platform and
 * inventory contexts, and write kstatus conditions — `Ready`, `Reconciling` while it waits (for a
 * datacenter it names, or for what still uses it before deletion), `Stalled` when only a change
 * to the object can help (an invalid spec, an overlap) with the field named. In a cluster a
 * finalizer holds the object until the platform no longer depends on it.
 */
export class PlatformReconciler implements Reconciler {
  readonly #source: PlatformSource;
  readonly #sync: PlatformSyncPort;
  readonly #now: () => Date;

  constructor(source: PlatformSource, sync: PlatformSyncPort, now: () => Date = () => new Date()) {
    this.#source = source;
    this.#sync = sync;
    this.#now = now;
  }

  async reconcile(key: string, log: Logger): Promise<ReconcileResult | undefined> {
    const slash = key.indexOf("/");
    const kind = key.slice(0, slash);
    const name = key.slice(slash + 1);
    const object = this.#source.get(kind, name);
    if (!object) {
      // Gone from a directory: the platform forgets it, unless something still uses it.
      if (this.#source.holdsDeletion) return undefined;
      const removed = await this.#sync.remove(kind, name);
      if (!removed.ok) {
        log.warn({ reason: removed.reason }, `${key} was removed, but ${removed.message}`);
        return { requeueAfterMs: IN_USE_RECHECK_MS };
      }
      log.info("removed from the platform configuration");
      return undefined;
    }
    if (object.deleting) return this.#delete(object, log);
    if (this.#source.holdsDeletion && !object.finalizers.includes(PLATFORM_FINALIZER)) {
      // The update this makes comes back through the watch and queues the key again.
      await this.#source.setFinalizer(object, true);
      return undefined;
    }

    const result = await this.#sync.apply({
      kind,
      name,
      generation: object.generation,
      spec: object.spec,
    });
    const summary: Summary = result.ok
      ? { phase: "ready", message: `generation ${object.generation} is applied` }
      : result.retry
        ? { phase: "reconciling", reason: result.reason, message: result.message }
        : { phase: "stalled", reason: result.reason, message: result.message };
    const fields = result.ok ? result.status : kindFields(object.status);
    await this.#writeStatus(object, summary, fields, log);
    if (result.ok) return undefined;
    if (result.retry) throw new Error(`${result.reason}: ${result.message}`);
    throw new TerminalError(`${result.reason}: ${result.message}`);
  }

  async #delete(object: PlatformObject, log: Logger): Promise<ReconcileResult | undefined> {
    if (!object.finalizers.includes(PLATFORM_FINALIZER)) return undefined;
    const removed = await this.#sync.remove(object.kind, object.name);
    if (!removed.ok) {
      await this.#writeStatus(
        object,
        {
          phase: "reconciling",
          reason: removed.reason,
          message: `deletion waits: ${removed.message}`,
        },
        kindFields(object.status),
        log,
      );
      return { requeueAfterMs: IN_USE_RECHECK_MS };
    }
    await this.#source.setFinalizer(object, false);
    log.info("deleted from the platform");
    return undefined;
  }

  async #writeStatus(
    object: PlatformObject,
    summary: Summary,
    fields: Record<string, unknown>,
    log: Logger,
  ): Promise<void> {
    const previous = Array.isArray(object.status.conditions)
      ? (object.status.conditions as Condition[])
      : [];
    const status = {
      ...fields,
      observedGeneration: object.generation,
      conditions: conditionsFor(summary, previous, object.generation, this.#now()),
    };
    if (sameStatus(status, object.status)) return;
    await this.#source.writeStatus(object, status);
    await this.#sync
      .recordStatus(object.kind, object.name, status, object.generation)
      .catch((err: unknown) => {
        // A refused spec was never recorded: nothing to attach the status to.
        if ((err as { code?: unknown }).code !== "DV_NOT_FOUND") throw err;
      });
    if (summary.phase !== "ready") log.info({ reason: summary.reason }, summary.message);
  }
}

/** The kind's own status fields, without what every status has. */
function kindFields(status: Record<string, unknown>): Record<string, unknown> {
  const { conditions: _c, observedGeneration: _g, ...rest } = status;
  return rest;
}
