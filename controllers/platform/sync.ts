import type { z } from "zod";
import type {
  DatacenterSpec,
  MachineClassSpec,
  NetworkPoolSpec,
  PlatformPolicySpec,
  ServerPoolSpec,
} from "../../crds/index.js";
import { kindOf } from "../../crds/index.js";
import type { InventoryStore, ServerSpec } from "../../src/contexts/inventory/index.js";
import type { PlatformStore } from "../../src/contexts/platform/index.js";
import { type Database, inTransaction, type Tx } from "../../src/db/index.js";
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

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `spec.${i.path.join(".")}: ${i.message}`).join("; ");
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
      if (code === "DV_OVERLAP") return { ok: false, reason: "Overlap", message, retry: false };
      if (code === "DV_IN_USE") return { ok: false, reason: "InUse", message, retry: true };
      if (code === "DV_PREFIX") return { ok: false, reason: "InvalidSpec", message, retry: false };
      throw err;
    }
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
        };
      }
      throw err;
    }
  }
}
