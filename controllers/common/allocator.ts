import type { AllocationPort, HeldServer, Holdings, Owner, Unit } from "./ports.js";

/**
 * What one resource reserves in a pass. Every reservation is idempotent — what the owner already
 * holds is the answer — so a pass may ask on every pass; the holdings read for the whole batch
 * answer most asks without a statement, and only what is missing is reserved.
 */
export class Allocator {
  readonly #port: AllocationPort;
  readonly #unit: Unit;
  readonly #owner: Owner;
  readonly #held: Holdings;
  readonly #datacenterId: string;

  constructor(
    port: AllocationPort,
    unit: Unit,
    owner: Owner,
    held: Holdings,
    datacenterId: string,
  ) {
    this.#port = port;
    this.#unit = unit;
    this.#owner = owner;
    this.#held = held;
    this.#datacenterId = datacenterId;
  }

  /** What the owner held when the pass began. */
  get held(): Holdings {
    return this.#held;
  }

  /**
   * The network pool a network or cluster draws on: the one its spec names, else the one its VLAN
   * is in (a network does not move when the datacenter's default changes), else the default.
   */
  async networkPool(named: string | undefined): Promise<string> {
    if (named !== undefined) return named;
    const held = this.#held.vlans[0]?.networkPool;
    return held ?? this.#port.defaultNetworkPool(this.#unit, this.#datacenterId);
  }

  async vlan(networkPool: string): Promise<number> {
    const held = this.#held.vlans.find((v) => v.networkPool === networkPool);
    if (held) return held.vlanId;
    return this.#port.reserveVlan(this.#unit, { networkPool, owner: this.#owner });
  }

  async prefix(networkPool: string, prefixLength: number): Promise<string> {
    const held = this.#held.prefixes.find(
      (p) => p.networkPool === networkPool && p.prefix.endsWith(`/${prefixLength}`),
    );
    if (held) return held.prefix;
    return this.#port.reservePrefix(this.#unit, { networkPool, prefixLength, owner: this.#owner });
  }

  /** `count` servers of a machine class, by name (all or nothing). */
  async servers(machineClass: string, count: number): Promise<HeldServer[]> {
    const held = this.#held.servers
      .filter((s) => s.machineClass === machineClass)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (held.length >= count) return held;
    return this.#port.reserveServers(this.#unit, {
      datacenterId: this.#datacenterId,
      machineClass,
      count,
      owner: this.#owner,
    });
  }

  async capacity(resource: string, amount: number): Promise<void> {
    if (this.#held.capacity.some((c) => c.resource === resource)) return;
    await this.#port.reserveCapacity(this.#unit, {
      datacenterId: this.#datacenterId,
      resource,
      amount,
      owner: this.#owner,
    });
  }

  /** Releases the prefixes the owner holds other than `keep` (a network that changed size). */
  async releasePrefixesExcept(keep: string): Promise<void> {
    await this.#port.releasePrefixesExcept(this.#unit, this.#owner, keep);
  }
}
