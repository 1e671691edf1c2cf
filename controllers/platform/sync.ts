import type { z } from "zod";
import type {
  DatacenterSpec,
  MachineClassSpec,
  NetworkPoolSpec,
  PlatformPolicySpec,
  ServerPoolSpec,
} from "../../crds/index.js";
import { kindOf } from "../../crds/index.js";
import {
  formatPrefix,
  type InventoryStore,
  parsePrefix,
  type ServerSpec,
} from "../../src/contexts/inventory/index.js";
import type { PlatformStore } from "../../src/contexts/platform/index.js";
import { type Database, inTransaction, type Tx } from "../../src/db/index.js";
import { OverlapError } from "../../src/kernel/index.js";
import { BUCKET_CAPACITY } from "../bucket/reconciler.js";

/** A platform object as applied (from a cluster or a directory). */
export interface PlatformObjectInput {
  readonly kind: string;
  readonly name: string;
  readonly generation: number;
  readonly spec: unknown;
}

/** The outcome of syncing one object, for its status. */
export type SyncResult =
  | { readonly ok: true; readonly status: Record<string, unknown> }
  | {
      readonly ok: false;
      readonly reason: string;
      readonly message: string;
      readonly retry: boolean;
      /** Status fields worth showing all the same (a held deletion's `usedBy`). */
      readonly status?: Record<string, unknown>;
    };

/** Kinds in the order a directory is applied: what others refer to comes first. */
export const APPLY_ORDER = [
  "Datacenter",
  "MachineClass",
  "PlatformPolicy",
  "RecoveryPolicy",
  "NetworkPool",
  "ServerPool",
];

/** Zod's issues as the API server words them: `spec.prefixes[1]: …`, `spec.vlanRanges[0].start: …`. */
function issues(error: z.ZodError): string {
  const field = (path: readonly PropertyKey[]) =>
    path.reduce<string>(
      (at, p) => (typeof p === "number" ? `${at}[${p}]` : `${at}.${String(p)}`),
      "spec",
    );
  return error.issues.map((i) => `${field(i.path)}: ${i.message}`).join("; ");
}

function expandServers(spec: z.output<typeof ServerPoolSpec>): ServerSpec[] {
  const listed = spec.servers.map((s) => ({
    name: s.name,
    machineClass: s.machineClass,
    cpuCores: s.cpuCores,
    memoryMib: s.memoryMiB,
  }));
  const generated = spec.generated
    ? Array.from({ length: spec.generated.count }, (_, i) => ({
        name: `${spec.generated?.namePrefix}-${String(i).padStart(3, "0")}`,
        machineClass: spec.generated?.machineClass ?? "",
        cpuCores: spec.generated?.cpuCores ?? 1,
        memoryMib: spec.generated?.memoryMiB ?? 512,
      }))
    : [];
  return [...listed, ...generated];
}

/** What the platform reconciler needs of the sync: {@link PlatformSync}, or a test's fake. */
export interface PlatformSyncPort {
  /** Validates and records an object, making the inventory match; a refusal is a result. */
  apply(input: PlatformObjectInput): Promise<SyncResult>;
  /** Removes an object; refused (`InUse`) while anything still uses it. */
  remove(kind: string, name: string): Promise<SyncResult>;
  /** Records the status written to the object. @throws a `DV_NOT_FOUND` error if never applied. */
  recordStatus(
    kind: string,
    name: string,
    status: Record<string, unknown>,
    observedGeneration: number,
  ): Promise<void>;
}

/** The stores platform configuration is synced into. */
export interface PlatformSyncStores {
  readonly db: Database;
  readonly inventory: InventoryStore;
  readonly platform: PlatformStore;
}

/**
 * Syncs platform configuration into the platform and inventory contexts: validates the spec,
 * records it, and makes the inventory match (datacenters with their capacity, network pools
 * with their VLANs and prefixes, server pools with their servers). Refusals come back as a
 * reason and a message for the object's status, naming the field.
 */
export class PlatformSync implements PlatformSyncPort {
  readonly #services: PlatformSyncStores;
  readonly #fence: (tx: Tx) => Promise<void>;

  /**
   * @param options.fence called first in every transaction that writes; it throws to refuse the
   *   write (the platform controller's PostgreSQL lease, `FencedError`).
   */
  constructor(services: PlatformSyncStores, options: { fence?: (tx: Tx) => Promise<void> } = {}) {
    this.#services = services;
    this.#fence = options.fence ?? (() => Promise.resolve());
  }

  /** Records what the controller observed of an object, for readers of the platform context. */
  async recordStatus(
    kind: string,
    name: string,
    status: Record<string, unknown>,
    observedGeneration: number,
  ): Promise<void> {
    const { platform, db } = this.#services;
    await inTransaction(db, async (tx) => {
      await this.#fence(tx);
      await platform.setStatus(tx, kind, name, status, observedGeneration);
    });
  }

  async apply(input: PlatformObjectInput): Promise<SyncResult> {
    const definition = kindOf(input.kind);
    if (!definition)
      return {
        ok: false,
        reason: "UnknownKind",
        message: `${input.kind} is not a platform.dataverket.io kind`,
        retry: false,
      };
    const parsed = definition.spec.safeParse(input.spec ?? {});
    if (!parsed.success)
      return { ok: false, reason: "InvalidSpec", message: issues(parsed.error), retry: false };
    const spec = parsed.data as Record<string, unknown>;
    const { inventory, platform, db } = this.#services;
    try {
      return await inTransaction(db, async (tx) => {
        await this.#fence(tx);
        await platform.upsert(tx, {
          kind: input.kind,
          name: input.name,
          generation: input.generation,
          spec,
        });
        switch (input.kind) {
          case "Datacenter": {
            const dc = spec as z.output<typeof DatacenterSpec>;
            await inventory.applyDatacenter(tx, {
              name: input.name,
              displayName: dc.displayName,
              site: dc.site,
              failureDomain: dc.failureDomain,
              generation: input.generation,
              spec,
            });
            await inventory.setCapacity(tx, {
              datacenterId: input.name,
              resource: BUCKET_CAPACITY,
              total: dc.objectStorageGiB * 1024 ** 3,
            });
            return { ok: true, status: { objectStorageGiB: dc.objectStorageGiB } };
          }
          case "NetworkPool": {
            const np = spec as z.output<typeof NetworkPoolSpec>;
            await inventory.applyNetworkPool(tx, {
              name: input.name,
              datacenterId: np.datacenter,
              generation: input.generation,
              isDefault: np.default,
              vlanRanges: np.vlanRanges.map((r) => ({ first: r.start, last: r.end })),
              prefixes: np.prefixes,
            });
            const usage = await inventory.networkPoolUsage(input.name, tx);
            return { ok: true, status: { vlans: usage.vlans, usedBy: usage.owners.slice(0, 20) } };
          }
          case "ServerPool": {
            const sp = spec as z.output<typeof ServerPoolSpec>;
            const { retained } = await inventory.applyServerPool(tx, {
              name: input.name,
              datacenterId: sp.datacenter,
              generation: input.generation,
              servers: expandServers(sp),
            });
            const usage = await inventory.serverPoolUsage(input.name, tx);
            return {
              ok: true,
              status: {
                servers: { total: usage.total, free: usage.free },
                retained,
                usedBy: usage.owners.slice(0, 20),
              },
            };
          }
          case "PlatformPolicy": {
            // Its quotas become every tenant's default limits (operators override per tenant).
            const policy = spec as z.output<typeof PlatformPolicySpec>;
            await inventory.quotas.applyDefaults(tx, input.name, policy.quotas);
            return { ok: true, status: {} };
          }
          case "MachineClass": {
            const mc = spec as z.output<typeof MachineClassSpec>;
            return { ok: true, status: { cpuCores: mc.cpuCores, memoryMiB: mc.memoryMiB } };
          }
          default:
            return { ok: true, status: {} };
        }
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const message = err instanceof Error ? err.message : String(err);
      if (code === "DV_NOT_FOUND")
        return { ok: false, reason: "DependencyMissing", message, retry: true };
      if (err instanceof OverlapError)
        return {
          ok: false,
          reason: "Overlap",
          message: await this.#overlapMessage(err, spec),
          retry: false,
        };
      if (code === "DV_IN_USE") return { ok: false, reason: "InUse", message, retry: true };
      if (code === "DV_PREFIX") return { ok: false, reason: "InvalidSpec", message, retry: false };
      throw err;
    }
  }

  /**
   * An overlap as the pool's author needs it: which of its fields, and which pool and field it
   * overlaps — `spec.prefixes[1] 10.0.0.0/16 overlaps NetworkPool "b" spec.prefixes[0]
   * 10.0.0.0/20` — with the indexes looked up in the specs as applied.
   */
  async #overlapMessage(err: OverlapError, spec: Record<string, unknown>): Promise<string> {
    const field = err.kind === "prefix" ? "prefixes" : "vlanRanges";
    const find = (of: unknown, value: string): string => {
      const found = (of as Record<string, unknown> | undefined)?.[field];
      const items: unknown[] = Array.isArray(found) ? found : [];
      const index = items.findIndex((v) => overlapKey(v) === value);
      return index >= 0 ? `spec.${field}[${index}] ${shown(items[index])}` : `${err.kind} ${value}`;
    };
    const own = find(spec, err.value);
    if (!err.other) return `${own}: ${err.message}`;
    const other = await this.#services.platform
      .get(err.other.kind, err.other.name)
      .then((o) => o.spec)
      .catch((e: unknown) => {
        // Gone meanwhile: name it without its field.
        if ((e as { code?: unknown }).code === "DV_NOT_FOUND") return undefined;
        throw e;
      });
    return `${own} overlaps ${err.other.kind} "${err.other.name}" ${find(other, err.other.value)}`;
  }

  /**
   * Removes an object from the inventory and the platform context. Refused (with who uses it)
   * while anything still uses it: a finalizer keeps it until then.
   */
  async remove(kind: string, name: string): Promise<SyncResult> {
    const { inventory, platform, db } = this.#services;
    try {
      await inTransaction(db, async (tx) => {
        await this.#fence(tx);
        if (kind === "NetworkPool") await inventory.deleteNetworkPool(tx, name);
        if (kind === "ServerPool") await inventory.deleteServerPool(tx, name);
        if (kind === "Datacenter") await inventory.deleteDatacenter(tx, name);
        if (kind === "PlatformPolicy") await inventory.quotas.removeDefaults(tx, name);
        await platform.remove(tx, kind, name);
      });
      return { ok: true, status: {} };
    } catch (err) {
      if ((err as { code?: unknown }).code === "DV_IN_USE") {
        return {
          ok: false,
          reason: "InUse",
          message: err instanceof Error ? err.message : String(err),
          retry: true,
          status: await this.#usage(kind, name),
        };
      }
      throw err;
    }
  }

  /** A pool's usage fields (`usedBy`, the counts), read afresh: what holds its deletion. */
  async #usage(kind: string, name: string): Promise<Record<string, unknown>> {
    const { inventory } = this.#services;
    if (kind === "NetworkPool") {
      const usage = await inventory.networkPoolUsage(name);
      return { vlans: usage.vlans, usedBy: usage.owners.slice(0, 20) };
    }
    if (kind === "ServerPool") {
      const usage = await inventory.serverPoolUsage(name);
      return {
        servers: { total: usage.total, free: usage.free },
        usedBy: usage.owners.slice(0, 20),
      };
    }
    return {};
  }
}

/** How the inventory names a prefix (`10.0.0.0/16`) or a VLAN range (`100-199`) of a spec. */
function overlapKey(item: unknown): string | undefined {
  if (typeof item === "string") {
    try {
      return formatPrefix(parsePrefix(item));
    } catch {
      return undefined;
    }
  }
  const range = item as { start?: unknown; end?: unknown } | null;
  return range && typeof range === "object"
    ? `${String(range.start)}-${String(range.end)}`
    : undefined;
}

/** A spec's prefix as written, or a VLAN range as `100-199`. */
const shown = (item: unknown): string =>
  typeof item === "string" ? item : (overlapKey(item) ?? "");
