import type { InventoryStore } from "../contexts/inventory/index.js";
import { type PlatformStore, stalledOf } from "../contexts/platform/index.js";
import { InvalidReferenceError } from "../kernel/index.js";

/** How the platform objects a request may name are listed in messages. */
const listing = (names: readonly string[]): string =>
  names.length === 0 ? "none" : names.map((n) => `"${n}"`).join(", ");

/** What admission checks against: the platform as synced from Git, read in one go. */
interface PlatformView {
  readonly offers: Awaited<ReturnType<InventoryStore["offers"]>>;
  readonly machineClasses: readonly string[];
  /** `Kind/name` of objects whose last change the platform controller refused. */
  readonly stalled: ReadonlyMap<string, { reason: string; message: string }>;
}

/** How long a read of the platform answers admission: platform objects change by Git commits. */
export const ADMISSION_VIEW_TTL_MS = 2_000;

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  readonly inventory: InventoryStore;
  readonly platform: PlatformStore;
  readonly now: () => Date;
  /** How long one read of the platform is used; {@link ADMISSION_VIEW_TTL_MS} by default. */
  readonly ttlMs?: number;
}

/**
 * Admission of references: the platform objects a tenant's request names (a datacenter, a
 * machine class, a network pool) are checked when the request arrives, so a typo is a 422 that
 * names the field and what exists instead of a task that fails minutes later. The platform is
 * read in five statements and used for {@link ADMISSION_VIEW_TTL_MS}, so a burst of requests
 * costs no round trip here; a reference that goes bad after admission (a pool removed from Git)
 * is the reconciler's to report.
 */
export class Admission {
  readonly #options: AdmissionOptions;
  #view: { at: number; view: Promise<PlatformView> } | undefined;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  async #platform(): Promise<PlatformView> {
    const now = this.#options.now().getTime();
    const ttl = this.#options.ttlMs ?? ADMISSION_VIEW_TTL_MS;
    if (this.#view && now - this.#view.at < ttl) return this.#view.view;
    const view = this.#read();
    this.#view = { at: now, view };
    // A failed read is not kept: the next request reads again.
    view.catch(() => {
      if (this.#view?.view === view) this.#view = undefined;
    });
    return view;
  }

  async #read(): Promise<PlatformView> {
    const offers = await this.#options.inventory.offers();
    const objects = await this.#options.platform.listKinds([
      "Datacenter",
      "MachineClass",
      "NetworkPool",
    ]);
    const stalled = new Map<string, { reason: string; message: string }>();
    for (const o of objects) {
      const condition = stalledOf(o.status);
      if (condition) stalled.set(`${o.kind}/${o.name}`, condition);
    }
    return {
      offers,
      machineClasses: objects.filter((o) => o.kind === "MachineClass").map((o) => o.name),
      stalled,
    };
  }

  /** @throws {InvalidReferenceError} when the datacenter does not exist or is Stalled. */
  async datacenter(name: string, field: string): Promise<void> {
    const view = await this.#platform();
    if (!view.offers.has(name)) {
      throw new InvalidReferenceError({
        field,
        kind: "Datacenter",
        ref: name,
        detail: `there is no datacenter "${name}"; the platform has: ${listing([...view.offers.keys()])}`,
      });
    }
    notStalled(view, "Datacenter", name, field);
  }

  /**
   * Checks what a resource's spec names against what its datacenter offers.
   *
   * @param base the JSON pointer of the spec in the request (`/body/spec`).
   * @throws {InvalidReferenceError}
   */
  async resource(
    kind: string,
    spec: Record<string, unknown>,
    datacenterId: string,
    base: string,
  ): Promise<void> {
    const view = await this.#platform();
    const offer = view.offers.get(datacenterId) ?? { networkPools: [], machineClasses: [] };
    if (kind === "network" || kind === "cluster") {
      const named = kind === "network" ? spec.networkPool : undefined;
      const field = `${base}/networkPool`;
      const names = offer.networkPools.map((p) => p.name);
      if (typeof named !== "string") {
        if (!offer.networkPools.some((p) => p.isDefault)) {
          throw new InvalidReferenceError({
            field,
            kind: "NetworkPool",
            ref: "",
            detail: `datacenter "${datacenterId}" has no default network pool; name one of: ${listing(names)}`,
          });
        }
      } else if (!names.includes(named)) {
        throw new InvalidReferenceError({
          field,
          kind: "NetworkPool",
          ref: named,
          detail: `there is no network pool "${named}" in datacenter "${datacenterId}"; it has: ${listing(names)}`,
        });
      } else {
        notStalled(view, "NetworkPool", named, field);
      }
    }
    if ((kind === "server" || kind === "cluster") && typeof spec.machineClass === "string") {
      const name = spec.machineClass;
      const field = `${base}/machineClass`;
      if (!view.machineClasses.includes(name)) {
        throw new InvalidReferenceError({
          field,
          kind: "MachineClass",
          ref: name,
          detail: `there is no machine class "${name}"; the platform offers: ${listing(view.machineClasses)}`,
        });
      }
      notStalled(view, "MachineClass", name, field);
      if (!offer.machineClasses.includes(name)) {
        throw new InvalidReferenceError({
          field,
          kind: "MachineClass",
          ref: name,
          detail: `no server pool of datacenter "${datacenterId}" has servers of machine class "${name}"; it has: ${listing(offer.machineClasses)}`,
        });
      }
    }
  }
}

/** Refuses an object whose last change the platform controller refused (`Stalled=True`). */
function notStalled(view: PlatformView, kind: string, name: string, field: string): void {
  const stalled = view.stalled.get(`${kind}/${name}`);
  if (stalled) {
    throw new InvalidReferenceError({
      field,
      kind,
      ref: name,
      detail: `${kind} "${name}" is Stalled (${stalled.reason}): ${stalled.message}`,
    });
  }
}
