// A datacenter with one network pool, written as the platform sync would (through the inventory
// store): what a test or a benchmark needs before a network can be admitted or reserved for.
import { InventoryStore } from "../../src/contexts/inventory/index.js";
import { type Database, inTransaction } from "../../src/db/index.js";
import { newId } from "../../src/kernel/index.js";

/** Options of {@link seedNetworkPool}. */
export interface SeedNetworkPool {
  readonly datacenter: string;
  readonly pool: string;
  readonly vlans: { readonly first: number; readonly last: number };
  readonly prefixes: readonly string[];
  /** The datacenter's default pool (what a network that names none is given). */
  readonly isDefault?: boolean;
}

/** Writes the datacenter and its network pool (its VLANs and free IP blocks with it). */
export async function seedNetworkPool(db: Database, seed: SeedNetworkPool): Promise<void> {
  await inTransaction(db, async (tx) => {
    const inventory = new InventoryStore(db, newId);
    await inventory.applyDatacenter(tx, {
      name: seed.datacenter,
      displayName: seed.datacenter,
      site: "test",
      failureDomain: "a",
      generation: 1,
      spec: {},
    });
    await inventory.applyNetworkPool(tx, {
      name: seed.pool,
      datacenterId: seed.datacenter,
      generation: 1,
      isDefault: seed.isDefault ?? true,
      vlanRanges: [seed.vlans],
      prefixes: [...seed.prefixes],
    });
  });
}
