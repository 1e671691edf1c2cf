// An in-memory implementation of the reconcile engine's lease port, for unit tests of the lease
// manager on virtual time. It passes the same contract (lease-contract.ts) as LeaseStore does
// against PostgreSQL.
import type { LeaseGrant, LeasePort, VirtualClock } from "../../src/reconcile/index.js";

/**
 * Leases in memory, timed by `clock`. A holder in `cutOff` gets errors from every call, as a
 * replica does whose database is away (or who has crashed, when it is never let back).
 */
export class MemoryLeases implements LeasePort {
  readonly rows = new Map<number, { holder: string | null; token: number; expiresAt: number }>();
  readonly members = new Map<string, number>();
  readonly cutOff = new Set<string>();
  constructor(readonly clock: VirtualClock) {}

  #check(holder?: string): void {
    if (holder === undefined ? this.cutOff.size > 0 : this.cutOff.has(holder))
      throw new Error("connection refused");
  }
  async ensureShards(count: number): Promise<void> {
    for (let s = 0; s < count; s++)
      if (!this.rows.has(s)) this.rows.set(s, { holder: null, token: 0, expiresAt: 0 });
  }
  async acquire(shard: number, holder: string, ttlMs: number): Promise<LeaseGrant | undefined> {
    this.#check(holder);
    const row = this.rows.get(shard);
    if (!row || (row.holder !== null && row.expiresAt > this.clock.now())) return undefined;
    row.holder = holder;
    row.token += 1;
    row.expiresAt = this.clock.now() + ttlMs;
    return { shard, token: row.token };
  }
  async renew(grants: readonly LeaseGrant[], holder: string, ttlMs: number): Promise<Set<number>> {
    this.#check(holder);
    const renewed = new Set<number>();
    for (const g of grants) {
      const row = this.rows.get(g.shard);
      if (row?.holder === holder && row.token === g.token && row.expiresAt > this.clock.now()) {
        row.expiresAt = this.clock.now() + ttlMs;
        renewed.add(g.shard);
      }
    }
    return renewed;
  }
  async release(grant: LeaseGrant, holder: string): Promise<void> {
    this.#check(holder);
    const row = this.rows.get(grant.shard);
    if (row?.holder === holder && row.token === grant.token) {
      row.holder = null;
      row.expiresAt = this.clock.now();
    }
  }
  async heartbeat(holder: string, _dc: string, ttlMs: number): Promise<string[]> {
    this.#check(holder);
    this.members.set(holder, this.clock.now() + ttlMs);
    return [...this.members].filter(([, at]) => at > this.clock.now()).map(([h]) => h);
  }
  async leave(holder: string): Promise<void> {
    this.#check(holder);
    this.members.delete(holder);
  }
  async list() {
    return [...this.rows].map(([shard, r]) => ({
      shard,
      holder: r.holder,
      live: r.holder !== null && r.expiresAt > this.clock.now(),
    }));
  }
  heldBy(holder: string): number {
    return [...this.rows.values()].filter(
      (r) => r.holder === holder && r.expiresAt > this.clock.now(),
    ).length;
  }
}
