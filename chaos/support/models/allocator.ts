// A model of the inventory allocator (InventoryStore's reservations) for `fc.commands`: one
// datacenter per run with three VLANs in two ranges, three IPv4 prefixes (two /28s, a /27), five
// servers of two machine classes and a capacity of 10, shared by four owners, who now and then
// reserve at the same moment. The model says, from the store's documentation (docs/data-model.md,
// the TSDoc of each reservation), what every call must answer; after every command the tables are
// compared with the model as a whole.
import fc from "fast-check";
import { expect } from "vitest";
import type { TestDatabase } from "../../../test/support/database.js";
import type { Allocations, InventoryStore, Owner } from "../../../src/contexts/inventory/index.js";
import { inTransaction, type Tx } from "../../../src/db/index.js";
import {
  CapacityExhaustedError,
  InUseError,
  newId,
  PoolExhaustedError,
} from "../../../src/kernel/index.js";
import { ModelCommand, refusal, type Tally } from "./run.js";

const VLAN_RANGES = [
  { first: 100, last: 101 },
  { first: 200, last: 200 },
];
const VLAN_IDS = [100, 101, 200];
// Two /28s and a /27: equally good fits at different addresses from the first reservation on.
const ROOTS = ["10.0.0.0/28", "10.0.0.32/28", "10.0.0.64/27"];
const MACHINE_CLASSES = ["small", "large"] as const;
type MachineClass = (typeof MACHINE_CLASSES)[number];
const SERVERS: readonly { name: string; machineClass: MachineClass }[] = [
  { name: "s0", machineClass: "small" },
  { name: "s1", machineClass: "small" },
  { name: "s2", machineClass: "small" },
  { name: "s3", machineClass: "large" },
  { name: "s4", machineClass: "large" },
];
const RESOURCE = "objekt.storage_bytes";
const CAPACITY = 10;
// One owner more than there are VLANs, so the VLAN pool can run out (an owner holds one per pool).
const OWNERS = 4;

// ---------------------------------------------------------------- IPv4 blocks, independently of ipmath.ts

/** An aligned IPv4 block: its first address as a number, and its prefix length. */
interface Block {
  readonly network: number;
  readonly length: number;
}

const blockSize = (b: Block): number => 2 ** (32 - b.length);

function parseBlock(text: string): Block {
  const [address = "", length = ""] = text.split("/");
  const network = address.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  return { network, length: Number(length) };
}

function formatBlock(b: Block): string {
  const octets = [24, 16, 8, 0].map((shift) => Math.floor(b.network / 2 ** shift) % 256);
  return `${octets.join(".")}/${b.length}`;
}

const overlap = (a: Block, b: Block): boolean =>
  a.network < b.network + blockSize(b) && b.network < a.network + blockSize(a);

/**
 * The free blocks of a buddy system that merges every pair of free buddies (the store merges them
 * back on release): the largest aligned blocks of the pool that hold no allocation.
 */
function freeBlocks(block: Block, allocated: readonly Block[]): Block[] {
  const inside = allocated.filter((a) => overlap(a, block));
  if (inside.length === 0) return [block];
  if (inside.some((a) => a.length <= block.length)) return [];
  const half = { length: block.length + 1 };
  return [
    ...freeBlocks({ network: block.network, ...half }, inside),
    ...freeBlocks({ network: block.network + blockSize(block) / 2, ...half }, inside),
  ];
}

const byAddress = (a: Block, b: Block): number => a.network - b.network || a.length - b.length;

// ---------------------------------------------------------------- the model

/** What every owner holds, as the store promises it. Owners are 0…OWNERS-1. */
export interface AllocatorModel {
  /** VLAN id → owner. */
  readonly vlans: Map<number, number>;
  readonly prefixes: { owner: number; block: Block }[];
  /** Server name → owner. */
  readonly servers: Map<string, number>;
  total: number;
  /** Owner → capacity amount reserved. */
  readonly reservations: Map<number, number>;
}

/** The real store and the names of this run's datacenter and pools. */
export interface AllocatorReal {
  readonly tally: Tally;
  readonly t: TestDatabase;
  readonly store: InventoryStore;
  readonly dc: string;
  readonly networkPool: string;
  readonly serverPool: string;
  readonly owners: readonly Owner[];
}

const freeOf = (m: AllocatorModel): Block[] =>
  ROOTS.map(parseBlock)
    .flatMap((root) =>
      freeBlocks(
        root,
        m.prefixes.map((p) => p.block),
      ),
    )
    .sort(byAddress);

const used = (m: AllocatorModel): number => [...m.reservations.values()].reduce((a, b) => a + b, 0);

/** What `allocationsOf` and `releaseAll` answer for `owner`, in a canonical order. */
function expectedAllocations(m: AllocatorModel, r: AllocatorReal, owner: number) {
  const amount = m.reservations.get(owner);
  return {
    vlans: [...m.vlans]
      .filter(([, who]) => who === owner)
      .map(([vlanId]) => ({ datacenterId: r.dc, vlanId, networkPool: r.networkPool }))
      .sort((a, b) => a.vlanId - b.vlanId),
    prefixes: m.prefixes
      .filter((p) => p.owner === owner)
      .map((p) => p.block)
      .sort(byAddress)
      .map((b) => ({ prefix: formatBlock(b), networkPool: r.networkPool })),
    servers: SERVERS.filter((s) => m.servers.get(s.name) === owner).map((s) => ({
      name: s.name,
      machineClass: s.machineClass,
      pool: r.serverPool,
    })),
    capacity:
      amount === undefined ? [] : [{ datacenterId: r.dc, resource: RESOURCE, amount: amount }],
  };
}

/** The same, from what the store answered (server ids left out, orders made canonical). */
function canonical(a: Allocations) {
  return {
    vlans: [...a.vlans].sort((x, y) => x.vlanId - y.vlanId),
    prefixes: [...a.prefixes].sort((x, y) => byAddress(parseBlock(x.prefix), parseBlock(y.prefix))),
    servers: a.servers
      .map((s) => ({ name: s.name, machineClass: s.machineClass, pool: s.pool }))
      .sort((x, y) => x.name.localeCompare(y.name)),
    capacity: a.capacity,
  };
}

interface Snapshot {
  vlans: { vlan: number; owner: string | null }[];
  blocks: { prefix: string; owner: string | null }[];
  servers: { name: string; owner: string | null }[];
  capacity: { total: number; used: number } | null;
  reservations: { owner: string; amount: number }[];
}

/**
 * Compares every allocation table of the run's datacenter with the model: each VLAN, block and
 * server has the owner the model says (so none is held twice and none leaked), the blocks are the
 * owned ones plus the fully merged free ones (so they tile the pool), and the capacity used is
 * the sum of the reservations.
 */
async function expectTablesMatch(m: AllocatorModel, r: AllocatorReal): Promise<void> {
  const [row] = await r.t.admin.query<Snapshot & Record<string, unknown>>(
    `SELECT
       (SELECT coalesce(json_agg(json_build_object('vlan', vlan_id, 'owner', owner_id) ORDER BY vlan_id), '[]')
          FROM inventory.vlans WHERE datacenter_id = $1) AS vlans,
       (SELECT coalesce(json_agg(json_build_object('prefix', prefix::text, 'owner', owner_id) ORDER BY prefix), '[]')
          FROM inventory.ip_blocks WHERE network_pool = $2) AS blocks,
       (SELECT coalesce(json_agg(json_build_object('name', name, 'owner', owner_id) ORDER BY name), '[]')
          FROM inventory.servers WHERE datacenter_id = $1) AS servers,
       (SELECT json_build_object('total', total, 'used', used)
          FROM inventory.capacity WHERE datacenter_id = $1 AND resource = $3) AS capacity,
       (SELECT coalesce(json_agg(json_build_object('owner', owner_id, 'amount', amount) ORDER BY owner_id), '[]')
          FROM inventory.capacity_reservations WHERE datacenter_id = $1) AS reservations`,
    [r.dc, r.networkPool, RESOURCE],
  );
  const id = (owner: number | undefined) =>
    owner === undefined ? null : (r.owners[owner]?.id ?? null);
  expect(row?.vlans).toEqual(VLAN_IDS.map((vlan) => ({ vlan, owner: id(m.vlans.get(vlan)) })));
  const blocks = [
    ...m.prefixes.map((p) => ({ block: p.block, owner: id(p.owner) })),
    ...freeOf(m).map((block) => ({ block, owner: null })),
  ]
    .sort((a, b) => byAddress(a.block, b.block))
    .map((b) => ({ prefix: formatBlock(b.block), owner: b.owner }));
  expect(
    [...(row?.blocks ?? [])].sort((a, b) => byAddress(parseBlock(a.prefix), parseBlock(b.prefix))),
  ).toEqual(blocks);
  expect(row?.servers).toEqual(
    SERVERS.map((s) => ({ name: s.name, owner: id(m.servers.get(s.name)) })),
  );
  expect(row?.capacity).toEqual({ total: m.total, used: used(m) });
  expect(row?.reservations).toEqual(
    [...m.reservations]
      .map(([owner, amount]) => ({ owner: id(owner) ?? "", amount }))
      .sort((a, b) => (a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0)),
  );
}

const tx = <T>(r: AllocatorReal, fn: (q: Tx) => Promise<T>): Promise<T> =>
  inTransaction(r.t.db, fn);

abstract class AllocatorCommand extends ModelCommand<AllocatorModel, AllocatorReal> {
  override async run(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    await super.run(m, r);
    await expectTablesMatch(m, r);
  }
}

// ---------------------------------------------------------------- reservations

/** One reservation call of an owner. */
type Reservation =
  | { readonly kind: "vlan" }
  | { readonly kind: "prefix"; readonly length: number }
  | { readonly kind: "servers"; readonly machineClass: MachineClass; readonly count: number }
  | { readonly kind: "capacity"; readonly amount: number };

const label = (w: Reservation): string => {
  switch (w.kind) {
    case "vlan":
      return "vlan";
    case "prefix":
      return `prefix /${w.length}`;
    case "servers":
      return `servers ${w.machineClass} ×${w.count}`;
    case "capacity":
      return `capacity ${w.amount}`;
  }
};

/** How a call ended. */
type Outcome =
  { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

async function settle(call: Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: true, value: await call };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Makes the reservation in a transaction of its own. */
function reserve(r: AllocatorReal, owner: number, w: Reservation): Promise<unknown> {
  const who = r.owners[owner]!;
  return tx(r, (q): Promise<unknown> => {
    switch (w.kind) {
      case "vlan":
        return r.store.reserveVlan(q, { networkPool: r.networkPool, owner: who });
      case "prefix":
        return r.store.reservePrefix(q, {
          networkPool: r.networkPool,
          prefixLength: w.length,
          owner: who,
        });
      case "servers":
        return r.store.reserveServers(q, {
          datacenterId: r.dc,
          machineClass: w.machineClass,
          count: w.count,
          owner: who,
        });
      case "capacity":
        return r.store.reserveCapacity(q, {
          datacenterId: r.dc,
          resource: RESOURCE,
          amount: w.amount,
          owner: who,
        });
    }
  });
}

function expectRefused(outcome: Outcome): unknown {
  if (outcome.ok) return expect.fail(`expected a refusal, got ${JSON.stringify(outcome.value)}`);
  return outcome.error;
}

function expectGranted(outcome: Outcome): unknown {
  if (!outcome.ok) return expect.fail(`expected a reservation, got ${String(outcome.error)}`);
  return outcome.value;
}

/**
 * Asserts that `outcome` is what the store promises for `owner`'s reservation in the state `m`
 * describes, then applies it to `m` (only once every assertion held). What the store promises:
 * - a VLAN: the one the owner holds in the pool, else a free one, else `PoolExhaustedError`;
 * - a prefix: the one of that length the owner holds, else the best fit (the smallest free block
 *   large enough, the lowest of those) carved from its start, else `PoolExhaustedError`;
 * - servers of a class: `count` of them counting those held, all or nothing; the answer is the
 *   owner's servers of that class, on the first call as on every later one;
 * - capacity: once per owner (a second call changes nothing), never beyond the total
 *   (`CapacityExhaustedError` naming what is available).
 * `raced`: the call ran at the same time as another owner's. Contenders skip the rows the other
 * has locked, so the prefix is then any free one of the length, not necessarily the best fit, and
 * a capacity race lost at commit is refused by the database's check constraint.
 */
function expectReservation(
  m: AllocatorModel,
  r: AllocatorReal,
  owner: number,
  w: Reservation,
  outcome: Outcome,
  raced = false,
): void {
  switch (w.kind) {
    case "vlan": {
      const held = [...m.vlans].find(([, who]) => who === owner)?.[0];
      const free = VLAN_IDS.filter((v) => !m.vlans.has(v));
      if (held !== undefined) {
        expect(expectGranted(outcome)).toEqual({ datacenterId: r.dc, vlanId: held });
      } else if (free.length === 0) {
        const err = expectRefused(outcome);
        expect(err).toBeInstanceOf(PoolExhaustedError);
        expect(err).toMatchObject({ resource: "vlan", pool: r.networkPool });
      } else {
        const got = expectGranted(outcome) as { datacenterId: string; vlanId: number };
        expect(got.datacenterId).toBe(r.dc);
        expect(free).toContain(got.vlanId);
        m.vlans.set(got.vlanId, owner);
      }
      return;
    }
    case "prefix": {
      const held = m.prefixes.find((p) => p.owner === owner && p.block.length === w.length);
      const fits = freeOf(m)
        .filter((b) => b.length <= w.length)
        .sort((a, b) => b.length - a.length || a.network - b.network);
      if (held) {
        expect(expectGranted(outcome)).toEqual({
          prefix: formatBlock(held.block),
          datacenterId: r.dc,
        });
      } else if (fits.length === 0) {
        const err = expectRefused(outcome);
        expect(err).toBeInstanceOf(PoolExhaustedError);
        expect(err).toMatchObject({
          resource: "prefix",
          pool: r.networkPool,
          message: expect.stringContaining(`no free IPv4 block of /${w.length} or larger`),
        });
      } else if (raced) {
        const got = expectGranted(outcome) as { prefix: string; datacenterId: string };
        const block = parseBlock(got.prefix);
        expect(got.datacenterId).toBe(r.dc);
        expect(block.length).toBe(w.length);
        expect(block.network % blockSize(block)).toBe(0);
        expect(fits.some((f) => overlap(f, block) && f.length <= block.length)).toBe(true);
        m.prefixes.push({ owner, block });
      } else {
        const block = { network: fits[0]!.network, length: w.length };
        expect(expectGranted(outcome)).toEqual({ prefix: formatBlock(block), datacenterId: r.dc });
        m.prefixes.push({ owner, block });
      }
      return;
    }
    case "servers": {
      const ofClass = SERVERS.filter((s) => s.machineClass === w.machineClass).map((s) => s.name);
      const held = ofClass.filter((name) => m.servers.get(name) === owner);
      const free = ofClass.filter((name) => !m.servers.has(name));
      const missing = w.count - held.length;
      if (missing <= 0) {
        const got = expectGranted(outcome) as { name: string }[];
        expect(got.map((s) => s.name).sort()).toEqual(held);
      } else if (free.length < missing) {
        const err = expectRefused(outcome);
        expect(err).toBeInstanceOf(PoolExhaustedError);
        expect(err).toMatchObject({
          resource: "server",
          pool: `${w.machineClass} in ${r.dc}`,
          message: expect.stringContaining(
            `${missing} free ${w.machineClass} servers needed, ${free.length} available`,
          ),
        });
      } else {
        const got = (expectGranted(outcome) as { name: string }[]).map((s) => s.name).sort();
        expect(got).toHaveLength(w.count);
        expect(got).toEqual(expect.arrayContaining(held));
        const taken = got.filter((name) => !held.includes(name));
        expect(free).toEqual(expect.arrayContaining(taken));
        for (const name of taken) m.servers.set(name, owner);
      }
      return;
    }
    case "capacity": {
      const available = m.total - used(m);
      if (m.reservations.has(owner)) {
        expectGranted(outcome);
      } else if (w.amount > available) {
        const err = expectRefused(outcome);
        if (raced && !(err instanceof CapacityExhaustedError)) {
          expect(err).toMatchObject({
            cause: { code: "23514", constraint: "capacity_available_nonnegative" },
          });
          return;
        }
        expect(err).toBeInstanceOf(CapacityExhaustedError);
        expect(err).toMatchObject({
          datacenterId: r.dc,
          resource: RESOURCE,
          requested: w.amount,
          message: `datacenter ${r.dc} has ${available} ${RESOURCE} available, ${w.amount} requested`,
        });
      } else {
        expectGranted(outcome);
        m.reservations.set(owner, w.amount);
      }
      return;
    }
  }
}

const cloneModel = (m: AllocatorModel): AllocatorModel => ({
  vlans: new Map(m.vlans),
  prefixes: [...m.prefixes],
  servers: new Map(m.servers),
  total: m.total,
  reservations: new Map(m.reservations),
});

function adopt(m: AllocatorModel, from: AllocatorModel): void {
  for (const key of ["vlans", "servers", "reservations"] as const) {
    m[key].clear();
    for (const [k, v] of from[key]) (m[key] as Map<unknown, unknown>).set(k, v);
  }
  m.prefixes.splice(0, m.prefixes.length, ...from.prefixes);
  m.total = from.total;
}

// ---------------------------------------------------------------- commands

/** One owner reserves something. */
class Reserve extends AllocatorCommand {
  constructor(
    readonly owner: number,
    readonly what: Reservation,
  ) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const outcome = await settle(reserve(r, this.owner, this.what));
    expectReservation(m, r, this.owner, this.what, outcome);
    if (!outcome.ok) r.tally.refused += 1;
  }

  toString(): string {
    return `reserve(o${this.owner}, ${label(this.what)})`;
  }
}

/**
 * Two owners reserve at once: the outcome is one the two calls could have had one after the
 * other, in either order — nothing taken twice, and no "exhausted" while enough was free.
 */
class Race extends AllocatorCommand {
  constructor(
    readonly owners: readonly [number, number],
    readonly what: readonly [Reservation, Reservation],
  ) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const calls = [0, 1].map((i) => ({ owner: this.owners[i]!, what: this.what[i]! }));
    const outcomes = await Promise.all(calls.map((c) => settle(reserve(r, c.owner, c.what))));
    const reasons: string[] = [];
    for (const order of [
      [0, 1],
      [1, 0],
    ]) {
      const trial = cloneModel(m);
      try {
        for (const i of order) {
          const call = calls[i]!;
          expectReservation(trial, r, call.owner, call.what, outcomes[i]!, true);
        }
      } catch (err) {
        reasons.push(`in the order ${order.join(", ")}: ${String(err)}`);
        continue;
      }
      adopt(m, trial);
      r.tally.refused += outcomes.filter((o) => !o.ok).length;
      return;
    }
    expect.fail(`no serial order explains the outcome:\n${reasons.join("\n")}`);
  }

  toString(): string {
    const [a, b] = this.owners;
    return `race(o${a} ${label(this.what[0])} ∥ o${b} ${label(this.what[1])})`;
  }
}

/** Change the capacity's total: refused with `InUseError` below what is reserved. */
class SetCapacity extends AllocatorCommand {
  constructor(readonly total: number) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const setting = tx(r, (q) =>
      r.store.setCapacity(q, { datacenterId: r.dc, resource: RESOURCE, total: this.total }),
    );
    if (this.total < used(m)) {
      const err = await refusal(r.tally, setting);
      expect(err).toBeInstanceOf(InUseError);
      expect(err).toMatchObject({ kind: "capacity", id: `${RESOURCE} of ${r.dc}` });
    } else {
      await setting;
      m.total = this.total;
    }
  }

  toString(): string {
    return `setCapacity(${this.total})`;
  }
}

/** Release everything an owner holds: the answer is exactly what it held, and all of it is free. */
class ReleaseAll extends AllocatorCommand {
  constructor(readonly owner: number) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const expected = expectedAllocations(m, r, this.owner);
    const released = await tx(r, (q) => r.store.releaseAll(q, r.owners[this.owner]!));
    expect(canonical(released)).toEqual(expected);
    for (const [vlan, who] of [...m.vlans]) if (who === this.owner) m.vlans.delete(vlan);
    for (const [name, who] of [...m.servers]) if (who === this.owner) m.servers.delete(name);
    m.prefixes.splice(0, m.prefixes.length, ...m.prefixes.filter((p) => p.owner !== this.owner));
    m.reservations.delete(this.owner);
  }

  toString(): string {
    return `releaseAll(o${this.owner})`;
  }
}

/** Release an owner's prefixes but one (after a network changed size); `keep` may be one it lacks. */
class ReleasePrefixesExcept extends AllocatorCommand {
  constructor(
    readonly owner: number,
    readonly keep: number,
  ) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const owned = m.prefixes
      .filter((p) => p.owner === this.owner)
      .map((p) => p.block)
      .sort(byAddress);
    const kept = owned[this.keep];
    const keep = kept ? formatBlock(kept) : "192.0.2.0/24";
    const released = await tx(r, (q) =>
      r.store.releasePrefixesExcept(q, r.owners[this.owner]!, keep),
    );
    expect([...released].sort()).toEqual(
      owned
        .filter((b) => b !== kept)
        .map(formatBlock)
        .sort(),
    );
    m.prefixes.splice(
      0,
      m.prefixes.length,
      ...m.prefixes.filter((p) => p.owner !== this.owner || p.block === kept),
    );
  }

  toString(): string {
    return `releasePrefixesExcept(o${this.owner}, keep its prefix #${this.keep})`;
  }
}

class Abort extends Error {
  override readonly name = "Abort";
}

/** Reserve one of everything in a transaction that then fails: nothing of it stays. */
class AbortedReservations extends AllocatorCommand {
  constructor(readonly owner: number) {
    super();
  }

  protected async apply(_m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const owner = r.owners[this.owner]!;
    const refusedAlready = (err: unknown) => {
      if (!(err instanceof PoolExhaustedError || err instanceof CapacityExhaustedError)) throw err;
    };
    const aborting = tx(r, async (q) => {
      await r.store.reserveVlan(q, { networkPool: r.networkPool, owner }).catch(refusedAlready);
      await r.store
        .reservePrefix(q, { networkPool: r.networkPool, prefixLength: 30, owner })
        .catch(refusedAlready);
      await r.store
        .reserveServers(q, { datacenterId: r.dc, machineClass: "small", count: 1, owner })
        .catch(refusedAlready);
      await r.store
        .reserveCapacity(q, { datacenterId: r.dc, resource: RESOURCE, amount: 1, owner })
        .catch(refusedAlready);
      throw new Abort("a later step of the pass failed");
    });
    expect(await refusal(r.tally, aborting)).toBeInstanceOf(Abort);
  }

  toString(): string {
    return `abortedReservations(o${this.owner})`;
  }
}

/** What an owner holds, as `allocationsOf` tells it: what the model says. */
class Inspect extends AllocatorCommand {
  constructor(readonly owner: number) {
    super();
  }

  protected async apply(m: AllocatorModel, r: AllocatorReal): Promise<void> {
    const held = await r.store.allocationsOf(r.owners[this.owner]!.id);
    expect(canonical(held)).toEqual(expectedAllocations(m, r, this.owner));
  }

  toString(): string {
    return `allocationsOf(o${this.owner})`;
  }
}

const owner = fc.nat(OWNERS - 1);
const reservation: fc.Arbitrary<Reservation> = fc.oneof(
  fc.constant({ kind: "vlan" as const }),
  fc.integer({ min: 26, max: 30 }).map((length) => ({ kind: "prefix" as const, length })),
  fc
    .tuple(fc.constantFrom(...MACHINE_CLASSES), fc.integer({ min: 1, max: 3 }))
    .map(([machineClass, count]) => ({ kind: "servers" as const, machineClass, count })),
  fc.integer({ min: 1, max: 7 }).map((amount) => ({ kind: "capacity" as const, amount })),
);

/** The commands of the allocator model. */
export const allocatorCommands: fc.Arbitrary<fc.AsyncCommand<AllocatorModel, AllocatorReal>>[] = [
  // Reservations make up about half of a sequence.
  fc.tuple(owner, reservation).map(([o, w]) => new Reserve(o, w)),
  fc.tuple(owner, reservation).map(([o, w]) => new Reserve(o, w)),
  fc.tuple(owner, reservation).map(([o, w]) => new Reserve(o, w)),
  fc.tuple(owner, reservation).map(([o, w]) => new Reserve(o, w)),
  fc
    .tuple(fc.uniqueArray(owner, { minLength: 2, maxLength: 2 }), reservation, reservation)
    .map(([[a = 0, b = 1], x, y]) => new Race([a, b], [x, y])),
  fc.integer({ min: 0, max: 12 }).map((total) => new SetCapacity(total)),
  owner.map((o) => new ReleaseAll(o)),
  owner.map((o) => new ReleaseAll(o)),
  fc.tuple(owner, fc.nat(2)).map(([o, k]) => new ReleasePrefixesExcept(o, k)),
  owner.map((o) => new AbortedReservations(o)),
  owner.map((o) => new Inspect(o)),
];

let runs = 0;

/** A datacenter of its own for one run, with its pools and capacity, and an empty model. */
export async function allocatorSetup(
  t: TestDatabase,
  store: InventoryStore,
  tally: Tally,
): Promise<{ model: AllocatorModel; real: AllocatorReal }> {
  const tag = `${++runs}-${newId().slice(-8)}`;
  const real: AllocatorReal = {
    tally,
    t,
    store,
    dc: `model-dc-${tag}`,
    networkPool: `model-np-${tag}`,
    serverPool: `model-sp-${tag}`,
    owners: Array.from({ length: OWNERS }, () => ({ kind: "cluster", id: newId() })),
  };
  await inTransaction(t.db, async (q) => {
    await store.applyDatacenter(q, {
      name: real.dc,
      displayName: real.dc,
      site: "osl",
      failureDomain: "a",
      generation: 1,
      spec: {},
    });
    await store.applyNetworkPool(q, {
      name: real.networkPool,
      datacenterId: real.dc,
      generation: 1,
      vlanRanges: VLAN_RANGES,
      prefixes: ROOTS,
    });
    await store.applyServerPool(q, {
      name: real.serverPool,
      datacenterId: real.dc,
      generation: 1,
      servers: SERVERS.map((s) => ({ ...s, cpuCores: 8, memoryMib: 32768 })),
    });
    await store.setCapacity(q, { datacenterId: real.dc, resource: RESOURCE, total: CAPACITY });
  });
  const model: AllocatorModel = {
    vlans: new Map(),
    prefixes: [],
    servers: new Map(),
    total: CAPACITY,
    reservations: new Map(),
  };
  return { model, real };
}
