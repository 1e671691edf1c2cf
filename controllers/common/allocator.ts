import type { AllocationPort, HeldServer, Holdings, Need, Owner, Unit } from "./ports.js";

/** Thrown by a dry allocator when the plan needs something the owner does not hold yet. */
export class NotHeld extends Error {
  constructor() {
    super("the plan needs something the owner does not hold yet");
  }
}

/** One instance for every throw: it is control flow, and a stack per throw costs. */
const NOT_HELD = new NotHeld();

/**
 * Thrown by a pass whose plan needs reservations the batch makes for many resources at once:
 * the pass runs again once they are made.
 */
export class Deferred extends Error {
  constructor() {
    super("the plan waits for the batch's reservations");
  }
}

/** One instance for every throw, as {@link NOT_HELD}. */
export const DEFERRED = new Deferred();

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
  readonly #dry: boolean;
  readonly #defaults: Map<string, Promise<string>>;
  /** Recording: what the plan needs is noted here instead of reserved (see {@link recording}). */
  readonly #needs: Need[] | undefined;

  /**
   * @param defaults the default network pool per datacenter, shared by a batch's allocators.
   * @param dry answer from what is held only, throwing {@link NotHeld} where a reservation
   *   would be needed: a pass whose resource holds everything reserves without a savepoint.
   */
  constructor(
    port: AllocationPort,
    unit: Unit,
    owner: Owner,
    held: Holdings,
    datacenterId: string,
    defaults: Map<string, Promise<string>> = new Map(),
    dry = false,
    needs?: Need[],
  ) {
    this.#port = port;
    this.#unit = unit;
    this.#owner = owner;
    this.#held = held;
    this.#datacenterId = datacenterId;
    this.#defaults = defaults;
    this.#dry = dry;
    this.#needs = needs;
  }

  /** The same allocator, reserving what is missing. */
  reserving(): Allocator {
    return this.#with(false);
  }

  /** The same allocator, answering only from what is held. */
  dry(): Allocator {
    return this.#with(true);
  }

  /**
   * The same allocator, noting in `needs` the VLANs and prefixes the plan lacks and answering
   * placeholders for them, so that a batch can reserve them for many resources at once. Anything
   * else the plan lacks (servers, capacity) ends it with {@link NotHeld}.
   */
  recording(needs: Need[]): Allocator {
    return this.#with(true, needs);
  }

  #with(dry: boolean, needs?: Need[]): Allocator {
    return new Allocator(
      this.#port,
      this.#unit,
      this.#owner,
      this.#held,
      this.#datacenterId,
      this.#defaults,
      dry,
      needs,
    );
  }

  /** Whether what the plan lacks may be looked up (a default pool) while recording. */
  get #recording(): boolean {
    return this.#needs !== undefined;
  }

  /** Notes `need` when recording (true: answer a placeholder); otherwise as {@link #need}. */
  #note(need: Need): boolean {
    if (this.#needs) {
      this.#needs.push(need);
      return true;
    }
    this.#need();
    return false;
  }

  #need(): void {
    if (this.#dry) throw NOT_HELD;
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
    if (held !== undefined) return held;
    if (!this.#recording) this.#need();
    let pool = this.#defaults.get(this.#datacenterId);
    if (!pool) {
      pool = this.#port.defaultNetworkPool(this.#unit, this.#datacenterId);
      this.#defaults.set(this.#datacenterId, pool);
      // A failed lookup is not cached: the next resource asks again.
      pool.catch(() => this.#defaults.delete(this.#datacenterId));
    }
    return pool;
  }

  async vlan(networkPool: string): Promise<number> {
    const held = this.#held.vlans.find((v) => v.networkPool === networkPool);
    if (held) return held.vlanId;
    if (this.#note({ owner: this.#owner, kind: "vlan", networkPool })) return 0;
    return this.#port.reserveVlan(this.#unit, { networkPool, owner: this.#owner });
  }

  async prefix(networkPool: string, prefixLength: number): Promise<string> {
    const held = this.#held.prefixes.find(
      (p) => p.networkPool === networkPool && p.prefix.endsWith(`/${prefixLength}`),
    );
    if (held) return held.prefix;
    if (this.#note({ owner: this.#owner, kind: "prefix", networkPool, prefixLength }))
      return `0.0.0.0/${prefixLength}`;
    return this.#port.reservePrefix(this.#unit, { networkPool, prefixLength, owner: this.#owner });
  }

  /** `count` servers of a machine class, by name (all or nothing). */
  async servers(machineClass: string, count: number): Promise<HeldServer[]> {
    const held = this.#held.servers
      .filter((s) => s.machineClass === machineClass)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (held.length >= count) return held;
    this.#need();
    return this.#port.reserveServers(this.#unit, {
      datacenterId: this.#datacenterId,
      machineClass,
      count,
      owner: this.#owner,
    });
  }

  async capacity(resource: string, amount: number): Promise<void> {
    if (this.#held.capacity.some((c) => c.resource === resource)) return;
    this.#need();
    await this.#port.reserveCapacity(this.#unit, {
      datacenterId: this.#datacenterId,
      resource,
      amount,
      owner: this.#owner,
    });
  }

  /** Releases the VLANs the owner holds in pools other than `networkPool` (it moved pools). */
  async releaseVlansExcept(networkPool: string): Promise<void> {
    this.#need();
    await this.#port.releaseVlansExcept(this.#unit, this.#owner, networkPool);
  }

  /** Releases the prefixes the owner holds other than `keep` (a network that changed size). */
  async releasePrefixesExcept(keep: string): Promise<void> {
    this.#need();
    await this.#port.releasePrefixesExcept(this.#unit, this.#owner, keep);
  }
}
