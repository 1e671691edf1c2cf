// The behaviour every implementation of the reconcile ports (controllers/common/ports.ts) must
// have, run against the PostgreSQL adapter (controllers/common/ports.int.test.ts) and against the
// in-memory world the reconcilers' unit tests use (controllers/common/ports.test.ts): if the two
// ever disagree on something a reconciler relies on, one of these cases fails for one of them.
//
// The world is seeded through its own writers (for PostgreSQL the contexts' stores, as the API,
// the platform sync, the workers and the operator write it), never through the ports under test.
import { describe, expect, it } from "vitest";
import type { Command, Owner, ReconcilePorts, Unit } from "../../controllers/index.js";
import type { Resource, ResourceKind } from "../../src/contexts/inventory/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import type { TaskVerb } from "../../src/kernel/index.js";
import type { LeaseGrant } from "../../src/reconcile/index.js";

/** How a contract case writes the world the ports read: the system of record's own writers. */
export interface ReconcileSeed {
  /** A new id of the kind the world's rows take (a UUID). */
  newId(): string;
  /** A new datacenter, named uniquely, with finite capacities (resource → total). */
  datacenter(capacity?: Record<string, number>): Promise<string>;
  /** A new network pool of the datacenter, named uniquely. */
  networkPool(input: {
    datacenterId: string;
    isDefault?: boolean;
    vlans?: readonly { first: number; last: number }[];
    prefixes?: readonly string[];
  }): Promise<string>;
  /** The platform controller refused the pool's last change: it is Stalled. */
  stallPool(name: string, reason: string, message: string): Promise<void>;
  /** New servers of a machine class in the datacenter; returns their names, sorted. */
  servers(input: { datacenterId: string; machineClass: string; count: number }): Promise<string[]>;
  /** A tenant resource, as the API records it (generation 1, no status). */
  resource(input: {
    kind: ResourceKind;
    datacenterId: string;
    spec?: Record<string, unknown>;
  }): Promise<Resource>;
  requestDeletion(id: string): Promise<Resource>;
  readResource(id: string): Promise<Resource | undefined>;
  /** A task of the resource, `created`, for its generation or `generation`. */
  task(input: { resource: Resource; operation: string; generation?: number }): Promise<Task>;
  /** Moves a task as someone else does (a worker, a tenant cancelling). */
  moveTask(id: string, verb: TaskVerb): Promise<void>;
  readTask(id: string): Promise<Task>;
  history(id: string): Promise<{ verb: string; message: string }[]>;
  /** The worker of `service` did the command; its event's data is `result`. */
  done(service: string, commandId: string, result: Record<string, unknown>): Promise<void>;
  /** The worker of `service` skipped the command (its task had ended): handled, no outcome. */
  skipped(service: string, commandId: string): Promise<void>;
  /** The command ended in a dead letter with `reason`; returns the dead letter's id. */
  deadLetter(service: string, commandId: string, reason: string): Promise<string>;
  /** An operator replayed the dead letter as the command `newCommandId`. */
  replay(deadLetterId: string, newCommandId: string): Promise<void>;
  discard(deadLetterId: string): Promise<void>;
  /** The relay tried to publish the (queued) command and failed with `error`. */
  deliveryFailed(commandId: string, error: string): Promise<void>;
  /** Grants a shard's lease to `holder` (it must be free). */
  grant(shard: number, holder: string): Promise<LeaseGrant>;
  release(grant: LeaseGrant, holder: string): Promise<void>;
}

/** Ports under test and the hands that seed their world. */
export interface ReconcileSubject {
  readonly ports: ReconcilePorts;
  readonly seed: ReconcileSeed;
  close(): Promise<void>;
}

const STORAGE = "objekt.storage_bytes";

/** Registers the contract cases for the ports `make` builds (a subject per case). */
export function reconcilePortsContract(name: string, make: () => Promise<ReconcileSubject>): void {
  const withSubject = (fn: (s: ReconcileSubject) => Promise<void>) => async () => {
    const subject = await make();
    try {
      await fn(subject);
    } finally {
      await subject.close();
    }
  };

  /** A command as a pass sends it, for `resourceId`. */
  const commandOf = (id: string, resourceId: string, again = false): Command => ({
    id,
    subject: "dv.nett.cmd.apply",
    envelope: { id, data: { resource_id: resourceId, step: "main" } },
    headers: {},
    again,
  });

  describe(`${name}: the reconcile ports contract`, () => {
    describe("units of work", () => {
      it(
        "commit what the unit wrote when it resolves, and nothing of it when it throws",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 10, last: 19 }],
          });
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const task = await seed.task({ resource: r, operation: "network.create" });
          const owner: Owner = { kind: "network", id: r.id };
          const command = commandOf(seed.newId(), r.id);
          const writeAll = async (unit: Unit) => {
            await ports.resources.writeStatus(unit, [
              { id: r.id, status: { phase: "x" }, observedGeneration: 1, version: r.version },
            ]);
            await ports.allocations.reserveVlan(unit, { networkPool: pool, owner });
            await ports.tasks.move(unit, [{ task, verb: "queued", message: "" }]);
            await ports.commands.send(unit, [command]);
          };

          await expect(
            ports.units.run(async (unit) => {
              await writeAll(unit);
              throw new Error("the pass failed");
            }),
          ).rejects.toThrow("the pass failed");
          expect(await seed.readResource(r.id)).toMatchObject({ status: {}, version: r.version });
          expect((await seed.readTask(task.id)).state).toBe("created");
          const nothing = await ports.units.run((unit) => ports.allocations.holdings(unit, [r.id]));
          expect(nothing.get(r.id)?.vlans).toEqual([]);

          // Committed this time; the command could be queued again only because it was not.
          expect(
            await ports.units.run(async (unit) => {
              await writeAll(unit);
              return "committed";
            }),
          ).toBe("committed");
          expect(await seed.readResource(r.id)).toMatchObject({
            status: { phase: "x" },
            observedGeneration: 1,
            version: r.version + 1,
          });
          expect((await seed.readTask(task.id)).state).toBe("queued");
          const held = await ports.units.run((unit) => ports.allocations.holdings(unit, [r.id]));
          expect(held.get(r.id)?.vlans).toEqual([{ vlanId: 10, networkPool: pool }]);
        }),
      );

      it(
        "undo a savepoint that throws alone, nested ones too; the unit goes on",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 10, last: 19 }],
          });
          const owners = [1, 2, 3, 4].map((): Owner => ({ kind: "network", id: seed.newId() }));
          const [a, b, c, d] = owners as [Owner, Owner, Owner, Owner];
          const vlan = (unit: Unit, owner: Owner) =>
            ports.allocations.reserveVlan(unit, { networkPool: pool, owner });
          await ports.units.run(async (unit) => {
            expect(await vlan(unit, a)).toBe(10);
            // Written through the outer unit, as a pass's allocator does inside planSafely.
            await expect(
              ports.units.savepoint(unit, async () => {
                expect(await vlan(unit, b)).toBe(11);
                throw new Error("half-way");
              }),
            ).rejects.toThrow("half-way");
            const kept = await ports.units.savepoint(unit, async (inner) => {
              const got = await vlan(inner, c);
              await expect(
                ports.units.savepoint(inner, async (innermost) => {
                  await vlan(innermost, d);
                  throw new Error("nested");
                }),
              ).rejects.toThrow("nested");
              return got;
            });
            // b's VLAN was given back when its savepoint was undone.
            expect(kept).toBe(11);
            expect(await vlan(unit, d)).toBe(12);
          });
          const held = await ports.units.run((unit) =>
            ports.allocations.holdings(
              unit,
              owners.map((o) => o.id),
            ),
          );
          expect(owners.map((o) => held.get(o.id)?.vlans.map((v) => v.vlanId))).toEqual([
            [10],
            [],
            [11],
            [12],
          ]);
        }),
      );
    });

    describe("fences", () => {
      it(
        "hold only the grants still held by the holder, with their current token",
        withSubject(async ({ ports, seed }) => {
          const [a, b] = [`a-${seed.newId()}`, `b-${seed.newId()}`];
          const g0 = await seed.grant(0, a);
          const g1 = await seed.grant(1, a);
          await seed.release(g1, a);
          const g1b = await seed.grant(1, b);
          const g2 = await seed.grant(2, a);
          await seed.release(g2, a);
          const g2again = await seed.grant(2, a);
          expect(g2again.token).toBeGreaterThan(g2.token);
          const hold = (grants: LeaseGrant[], holder: string) =>
            ports.units.run((unit) => ports.fences.hold(unit, grants, holder));
          expect(await hold([g0, g1, g2], a)).toEqual(new Set([0]));
          expect(await hold([g0, g2again], a)).toEqual(new Set([0, 2]));
          expect(await hold([g0, g1b], b)).toEqual(new Set([1]));
          expect(await hold([], a)).toEqual(new Set());
          for (const [g, holder] of [
            [g0, a],
            [g1b, b],
            [g2again, a],
          ] as const)
            await seed.release(g, holder);
        }),
      );
    });

    describe("resources", () => {
      it(
        "lock the resources that exist, in id order, as stored",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r1 = await seed.resource({ kind: "network", datacenterId: dc, spec: { a: 1 } });
          const r2 = await seed.resource({ kind: "bucket", datacenterId: dc, spec: { b: 2 } });
          const locked = await ports.units.run((unit) =>
            ports.resources.lock(unit, [seed.newId(), r2.id, r1.id]),
          );
          expect(locked.map((r) => r.id)).toEqual([r1.id, r2.id].sort());
          const byId = new Map(locked.map((r) => [r.id, r]));
          expect(byId.get(r1.id)).toMatchObject({
            kind: "network",
            datacenterId: dc,
            spec: { a: 1 },
            status: {},
            generation: 1,
            observedGeneration: 0,
            version: r1.version,
            deletionRequestedAt: null,
          });
          expect(byId.get(r2.id)).toMatchObject({ kind: "bucket", spec: { b: 2 } });
          expect(await ports.units.run((unit) => ports.resources.lock(unit, []))).toEqual([]);
        }),
      );

      it(
        "write a status only at the version given, and say whose version had moved",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r1 = await seed.resource({ kind: "network", datacenterId: dc });
          const r2 = await seed.resource({ kind: "network", datacenterId: dc });
          const gone = seed.newId();
          const status = { conditions: [{ type: "Ready", status: "True" }], cidr: "10.0.0.0/26" };
          const moved = await ports.units.run((unit) =>
            ports.resources.writeStatus(unit, [
              { id: r1.id, status, observedGeneration: 1, version: r1.version },
              { id: r2.id, status, observedGeneration: 1, version: r2.version + 1 },
              { id: gone, status, observedGeneration: 1, version: 1 },
            ]),
          );
          expect(moved).toEqual(new Set([r2.id, gone]));
          expect(await seed.readResource(r1.id)).toMatchObject({
            status,
            observedGeneration: 1,
            version: r1.version + 1,
          });
          expect(await seed.readResource(r2.id)).toMatchObject({
            status: {},
            observedGeneration: 0,
            version: r2.version,
          });
          // The version it was read at is stale now.
          const again = await ports.units.run((unit) =>
            ports.resources.writeStatus(unit, [
              { id: r1.id, status: {}, observedGeneration: 1, version: r1.version },
            ]),
          );
          expect(again).toEqual(new Set([r1.id]));
          expect(await ports.units.run((unit) => ports.resources.writeStatus(unit, []))).toEqual(
            new Set(),
          );
        }),
      );

      it(
        "remove only resources whose deletion was requested and which hold nothing",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({ datacenterId: dc, vlans: [{ first: 5, last: 6 }] });
          const going = await seed.resource({ kind: "network", datacenterId: dc });
          const staying = await seed.resource({ kind: "network", datacenterId: dc });
          const holding = await seed.resource({ kind: "network", datacenterId: dc });
          await seed.requestDeletion(going.id);
          await seed.requestDeletion(holding.id);
          await ports.units.run((unit) =>
            ports.allocations.reserveVlan(unit, {
              networkPool: pool,
              owner: { kind: "network", id: holding.id },
            }),
          );
          await ports.units.run((unit) => ports.resources.remove(unit, [going.id, staying.id]));
          expect(await seed.readResource(going.id)).toBeUndefined();
          expect(await seed.readResource(staying.id)).toBeDefined();
          await expect(
            ports.units.run((unit) => ports.resources.remove(unit, [holding.id])),
          ).rejects.toMatchObject({ code: "DV_IN_USE" });
          expect(await seed.readResource(holding.id)).toBeDefined();
        }),
      );
    });

    describe("allocations", () => {
      it(
        "tell what each owner holds, for every owner asked",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter({ [STORAGE]: 1000 });
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 300, last: 301 }],
            prefixes: ["10.20.0.0/24"],
          });
          const names = await seed.servers({ datacenterId: dc, machineClass: "m1", count: 2 });
          const a: Owner = { kind: "cluster", id: seed.newId() };
          const b: Owner = { kind: "cluster", id: seed.newId() };
          const held = await ports.units.run(async (unit) => {
            await ports.allocations.reserveVlan(unit, { networkPool: pool, owner: a });
            await ports.allocations.reservePrefix(unit, {
              networkPool: pool,
              prefixLength: 26,
              owner: a,
            });
            await ports.allocations.reserveServers(unit, {
              datacenterId: dc,
              machineClass: "m1",
              count: 2,
              owner: a,
            });
            await ports.allocations.reserveCapacity(unit, {
              datacenterId: dc,
              resource: STORAGE,
              amount: 100,
              owner: a,
            });
            return ports.allocations.holdings(unit, [a.id, b.id]);
          });
          expect(held.get(a.id)).toEqual({
            vlans: [{ vlanId: 300, networkPool: pool }],
            prefixes: [{ prefix: "10.20.0.0/26", networkPool: pool }],
            servers: names.map((n) => ({ id: expect.any(String), name: n, machineClass: "m1" })),
            capacity: [{ resource: STORAGE, amount: 100 }],
          });
          expect(held.get(b.id)).toEqual({ vlans: [], prefixes: [], servers: [], capacity: [] });
          const later = await ports.units.run((unit) => ports.allocations.holdings(unit, [a.id]));
          expect(later.get(a.id)).toEqual(held.get(a.id));
        }),
      );

      it(
        "reserve the lowest free VLAN of a pool, the same one again for its owner, until none is left",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 100, last: 101 }],
          });
          const other = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 200, last: 200 }],
          });
          const [a, b, c] = [1, 2, 3].map((): Owner => ({ kind: "network", id: seed.newId() })) as [
            Owner,
            Owner,
            Owner,
          ];
          const vlan = (networkPool: string, owner: Owner) =>
            ports.units.run((unit) => ports.allocations.reserveVlan(unit, { networkPool, owner }));
          expect(await vlan(pool, a)).toBe(100);
          expect(await vlan(pool, a)).toBe(100);
          expect(await vlan(pool, b)).toBe(101);
          // Another pool is another reservation, even for the same owner.
          expect(await vlan(other, a)).toBe(200);
          await expect(vlan(pool, c)).rejects.toMatchObject({
            code: "DV_POOL_EXHAUSTED",
            resource: "vlan",
            pool,
          });
          await expect(vlan(other, b)).rejects.toMatchObject({ code: "DV_POOL_EXHAUSTED" });
        }),
      );

      it(
        "carve prefixes best fit then lowest first, never overlapping, the same again per length",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({ datacenterId: dc, prefixes: ["10.1.0.0/24"] });
          const [a, b, c, d] = [1, 2, 3, 4].map((): Owner => ({
            kind: "network",
            id: seed.newId(),
          })) as [Owner, Owner, Owner, Owner];
          const prefix = (owner: Owner, prefixLength: number) =>
            ports.units.run((unit) =>
              ports.allocations.reservePrefix(unit, { networkPool: pool, prefixLength, owner }),
            );
          expect(await prefix(a, 26)).toBe("10.1.0.0/26");
          expect(await prefix(a, 26)).toBe("10.1.0.0/26");
          expect(await prefix(b, 25)).toBe("10.1.0.128/25");
          expect(await prefix(c, 27)).toBe("10.1.0.64/27");
          // A network that changes size holds a second prefix until the old one is released.
          expect(await prefix(a, 28)).toBe("10.1.0.96/28");
          await expect(prefix(d, 27)).rejects.toMatchObject({
            code: "DV_POOL_EXHAUSTED",
            resource: "prefix",
            pool,
          });
          expect(await prefix(d, 28)).toBe("10.1.0.112/28");
          await expect(prefix(d, 30)).rejects.toMatchObject({ code: "DV_POOL_EXHAUSTED" });

          const held = await ports.units.run((unit) =>
            ports.allocations.holdings(unit, [a.id, b.id, c.id, d.id]),
          );
          const all = [...held.values()].flatMap((h) => h.prefixes.map((p) => p.prefix));
          expect(all.sort()).toEqual(
            [
              "10.1.0.0/26",
              "10.1.0.96/28",
              "10.1.0.128/25",
              "10.1.0.64/27",
              "10.1.0.112/28",
            ].sort(),
          );
          expect(disjoint(all)).toBe(true);
        }),
      );

      it(
        "reserve for many owners at once what one after the other would give them",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 100, last: 109 }],
            prefixes: ["10.2.0.0/24"],
          });
          const owners = [1, 2, 3, 4, 5].map((): Owner => ({ kind: "network", id: seed.newId() }));
          const [first] = owners as [Owner];
          // One owner holds a VLAN and a /28 already: it is given nothing more.
          await ports.units.run(async (unit) => {
            await ports.allocations.reserveVlan(unit, { networkPool: pool, owner: first });
            await ports.allocations.reservePrefix(unit, {
              networkPool: pool,
              prefixLength: 28,
              owner: first,
            });
          });
          const held = await ports.units.run(async (unit) => {
            await ports.allocations.reserveMany(
              unit,
              owners.flatMap((owner) => [
                { owner, kind: "vlan" as const, networkPool: pool },
                { owner, kind: "prefix" as const, networkPool: pool, prefixLength: 28 },
              ]),
            );
            return ports.allocations.holdings(
              unit,
              owners.map((o) => o.id),
            );
          });
          expect(owners.map((o) => held.get(o.id)?.vlans.map((v) => v.vlanId))).toEqual([
            [100],
            [101],
            [102],
            [103],
            [104],
          ]);
          // As five reservations one after the other: the lowest /28s, in order.
          expect(owners.map((o) => held.get(o.id)?.prefixes.map((p) => p.prefix))).toEqual([
            ["10.2.0.0/28"],
            ["10.2.0.16/28"],
            ["10.2.0.32/28"],
            ["10.2.0.48/28"],
            ["10.2.0.64/28"],
          ]);
          // What carving left is free for the next reservation, best fit first.
          const next: Owner = { kind: "network", id: seed.newId() };
          expect(
            await ports.units.run((unit) =>
              ports.allocations.reservePrefix(unit, {
                networkPool: pool,
                prefixLength: 28,
                owner: next,
              }),
            ),
          ).toBe("10.2.0.80/28");
        }),
      );

      it(
        "give an owner all it needs or nothing, and refuse nobody, when a pool runs out",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 100, last: 102 }],
            prefixes: ["10.3.0.0/27"],
          });
          const owners = [1, 2, 3].map((): Owner => ({ kind: "network", id: seed.newId() }));
          const held = await ports.units.run(async (unit) => {
            await ports.allocations.reserveMany(
              unit,
              owners.flatMap((owner) => [
                { owner, kind: "vlan" as const, networkPool: pool },
                { owner, kind: "prefix" as const, networkPool: pool, prefixLength: 28 },
              ]),
            );
            return ports.allocations.holdings(
              unit,
              owners.map((o) => o.id),
            );
          });
          // Two /28s in the pool: two owners get a VLAN and a prefix, the third nothing at all.
          const served = owners.filter((o) => (held.get(o.id)?.prefixes.length ?? 0) > 0);
          const left = owners.filter((o) => (held.get(o.id)?.prefixes.length ?? 0) === 0);
          expect(served).toHaveLength(2);
          for (const o of served) expect(held.get(o.id)?.vlans).toHaveLength(1);
          expect(left).toHaveLength(1);
          expect(held.get((left[0] as Owner).id)).toEqual({
            vlans: [],
            prefixes: [],
            servers: [],
            capacity: [],
          });
          // Its own reservation then says why.
          await expect(
            ports.units.run((unit) =>
              ports.allocations.reservePrefix(unit, {
                networkPool: pool,
                prefixLength: 28,
                owner: left[0] as Owner,
              }),
            ),
          ).rejects.toMatchObject({ code: "DV_POOL_EXHAUSTED", resource: "prefix" });
        }),
      );

      it(
        "release everything an owner holds, return it, and merge freed prefixes back",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter({ [STORAGE]: 100 });
          const pool = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 7, last: 7 }],
            prefixes: ["10.2.0.0/24"],
          });
          const [server] = await seed.servers({ datacenterId: dc, machineClass: "m1", count: 1 });
          const a: Owner = { kind: "cluster", id: seed.newId() };
          const b: Owner = { kind: "cluster", id: seed.newId() };
          await ports.units.run(async (unit) => {
            const { allocations } = ports;
            await allocations.reserveVlan(unit, { networkPool: pool, owner: a });
            await allocations.reservePrefix(unit, {
              networkPool: pool,
              prefixLength: 26,
              owner: a,
            });
            await allocations.reservePrefix(unit, {
              networkPool: pool,
              prefixLength: 28,
              owner: a,
            });
            await allocations.reservePrefix(unit, {
              networkPool: pool,
              prefixLength: 25,
              owner: b,
            });
            await allocations.reserveServers(unit, {
              datacenterId: dc,
              machineClass: "m1",
              count: 1,
              owner: a,
            });
            await allocations.reserveCapacity(unit, {
              datacenterId: dc,
              resource: STORAGE,
              amount: 100,
              owner: a,
            });
          });
          const released = await ports.units.run((unit) => ports.allocations.releaseAll(unit, a));
          expect(released.vlans).toEqual([{ vlanId: 7, networkPool: pool }]);
          expect(released.prefixes.map((p) => p.prefix).sort()).toEqual(
            ["10.2.0.0/26", "10.2.0.64/28"].sort(),
          );
          expect(released.servers.map((s) => s.name)).toEqual([server]);
          expect(released.capacity).toEqual([{ resource: STORAGE, amount: 100 }]);
          expect(await ports.units.run((unit) => ports.allocations.releaseAll(unit, a))).toEqual({
            vlans: [],
            prefixes: [],
            servers: [],
            capacity: [],
          });

          // Everything a held is free for others; with b's prefix gone too, the /24 is whole.
          const c: Owner = { kind: "cluster", id: seed.newId() };
          await ports.units.run((unit) => ports.allocations.releaseAll(unit, b));
          const got = await ports.units.run(async (unit) => {
            const { allocations } = ports;
            return {
              vlan: await allocations.reserveVlan(unit, { networkPool: pool, owner: c }),
              prefix: await allocations.reservePrefix(unit, {
                networkPool: pool,
                prefixLength: 24,
                owner: c,
              }),
              servers: await allocations.reserveServers(unit, {
                datacenterId: dc,
                machineClass: "m1",
                count: 1,
                owner: c,
              }),
            };
          });
          expect(got).toMatchObject({
            vlan: 7,
            prefix: "10.2.0.0/24",
            servers: [{ name: server }],
          });
          await ports.units.run((unit) =>
            ports.allocations.reserveCapacity(unit, {
              datacenterId: dc,
              resource: STORAGE,
              amount: 100,
              owner: c,
            }),
          );
        }),
      );

      it(
        "release an owner's VLANs outside the pool it keeps",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const left = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 10, last: 11 }],
          });
          const kept = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 20, last: 21 }],
          });
          const a: Owner = { kind: "network", id: seed.newId() };
          const vlan = (networkPool: string) =>
            ports.units.run((unit) =>
              ports.allocations.reserveVlan(unit, { networkPool, owner: a }),
            );
          expect(await vlan(left)).toBe(10);
          expect(await vlan(kept)).toBe(20);
          await ports.units.run((unit) => ports.allocations.releaseVlansExcept(unit, a, kept));
          const held = await ports.units.run((unit) => ports.allocations.holdings(unit, [a.id]));
          expect(held.get(a.id)?.vlans).toEqual([{ vlanId: 20, networkPool: kept }]);
          // VLAN 10 is free again.
          const b: Owner = { kind: "network", id: seed.newId() };
          expect(
            await ports.units.run((unit) =>
              ports.allocations.reserveVlan(unit, { networkPool: left, owner: b }),
            ),
          ).toBe(10);
        }),
      );

      it(
        "release an owner's prefixes but the one it keeps",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const pool = await seed.networkPool({ datacenterId: dc, prefixes: ["10.3.0.0/24"] });
          const a: Owner = { kind: "network", id: seed.newId() };
          const b: Owner = { kind: "network", id: seed.newId() };
          const prefix = (owner: Owner, prefixLength: number) =>
            ports.units.run((unit) =>
              ports.allocations.reservePrefix(unit, { networkPool: pool, prefixLength, owner }),
            );
          expect(await prefix(a, 26)).toBe("10.3.0.0/26");
          expect(await prefix(a, 25)).toBe("10.3.0.128/25");
          await ports.units.run((unit) =>
            ports.allocations.releasePrefixesExcept(unit, a, "10.3.0.128/25"),
          );
          const held = await ports.units.run((unit) => ports.allocations.holdings(unit, [a.id]));
          expect(held.get(a.id)?.prefixes).toEqual([
            { prefix: "10.3.0.128/25", networkPool: pool },
          ]);
          // The /26 went back and merged: the low half is whole again.
          expect(await prefix(b, 25)).toBe("10.3.0.0/25");
        }),
      );

      it(
        "reserve servers of a class by name, counting what the owner holds, all or nothing",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const elsewhere = await seed.datacenter();
          const m1 = await seed.servers({ datacenterId: dc, machineClass: "m1", count: 3 });
          const [m2] = await seed.servers({ datacenterId: dc, machineClass: "m2", count: 1 });
          await seed.servers({ datacenterId: elsewhere, machineClass: "m1", count: 2 });
          const [a, b, c] = [1, 2, 3].map((): Owner => ({ kind: "cluster", id: seed.newId() })) as [
            Owner,
            Owner,
            Owner,
          ];
          const servers = (unit: Unit, owner: Owner, count: number, machineClass = "m1") =>
            ports.allocations.reserveServers(unit, {
              datacenterId: dc,
              machineClass,
              count,
              owner,
            });
          const names = (list: { name: string }[]) => list.map((s) => s.name);
          await ports.units.run(async (unit) => {
            expect(names(await servers(unit, a, 1))).toEqual(m1.slice(0, 1));
            // Counting the one it holds: one more.
            expect(names(await servers(unit, a, 2))).toEqual(m1.slice(0, 2));
            expect(names(await servers(unit, a, 2))).toEqual(m1.slice(0, 2));
            expect(names(await servers(unit, a, 1))).toEqual(m1.slice(0, 2));
            // Two wanted, one free in this datacenter: none taken (the pass reserves under a
            // savepoint, as here).
            await expect(
              ports.units.savepoint(unit, () => servers(unit, b, 2)),
            ).rejects.toMatchObject({
              code: "DV_POOL_EXHAUSTED",
              resource: "server",
            });
            const held = await ports.allocations.holdings(unit, [b.id]);
            expect(held.get(b.id)?.servers).toEqual([]);
            expect(names(await servers(unit, c, 1))).toEqual(m1.slice(2));
            expect(names(await servers(unit, b, 1, "m2"))).toEqual([m2]);
          });
          await expect(ports.units.run((unit) => servers(unit, b, 2, "m2"))).rejects.toMatchObject({
            code: "DV_POOL_EXHAUSTED",
            resource: "server",
          });
        }),
      );

      it(
        "reserve capacity once per owner, refuse what does not fit, count it at commit",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter({ [STORAGE]: 100 });
          const [a, b, c, d] = [1, 2, 3, 4].map((): Owner => ({
            kind: "bucket",
            id: seed.newId(),
          })) as [Owner, Owner, Owner, Owner];
          const reserve = (owner: Owner, amount: number, resource = STORAGE) =>
            ports.units.run((unit) =>
              ports.allocations.reserveCapacity(unit, {
                datacenterId: dc,
                resource,
                amount,
                owner,
              }),
            );
          const capacityOf = async (owner: Owner) =>
            (await ports.units.run((unit) => ports.allocations.holdings(unit, [owner.id]))).get(
              owner.id,
            )?.capacity;
          await reserve(a, 60);
          // A second reservation changes nothing, whatever it asks.
          await reserve(a, 60);
          await reserve(a, 90);
          expect(await capacityOf(a)).toEqual([{ resource: STORAGE, amount: 60 }]);
          await expect(reserve(b, 50)).rejects.toMatchObject({ code: "DV_CAPACITY_EXHAUSTED" });
          expect(await capacityOf(b)).toEqual([]);
          await expect(reserve(b, 1, "objekt.unknown")).rejects.toMatchObject({
            code: "DV_CAPACITY_EXHAUSTED",
          });
          // What a unit releases is available from its commit on, not within it.
          await expect(
            ports.units.run(async (unit) => {
              await ports.allocations.releaseAll(unit, a);
              await ports.allocations.reserveCapacity(unit, {
                datacenterId: dc,
                resource: STORAGE,
                amount: 50,
                owner: b,
              });
            }),
          ).rejects.toMatchObject({ code: "DV_CAPACITY_EXHAUSTED" });
          expect(await capacityOf(a)).toEqual([{ resource: STORAGE, amount: 60 }]);
          await ports.units.run((unit) => ports.allocations.releaseAll(unit, a));
          await reserve(b, 50);
          // 50 left: two of 30 each fit alone, not together; the unit is refused as a whole.
          await expect(
            ports.units.run(async (unit) => {
              for (const owner of [c, d])
                await ports.allocations.reserveCapacity(unit, {
                  datacenterId: dc,
                  resource: STORAGE,
                  amount: 30,
                  owner,
                });
            }),
          ).rejects.toThrow();
          expect(await capacityOf(c)).toEqual([]);
          expect(await capacityOf(d)).toEqual([]);
          await reserve(c, 30);
          await expect(reserve(d, 30)).rejects.toMatchObject({ code: "DV_CAPACITY_EXHAUSTED" });
        }),
      );

      it(
        "name a datacenter's default network pool, or refuse with DV_NOT_FOUND",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          await seed.networkPool({ datacenterId: dc, vlans: [{ first: 1, last: 1 }] });
          const chosen = await seed.networkPool({
            datacenterId: dc,
            isDefault: true,
            vlans: [{ first: 2, last: 2 }],
          });
          const bare = await seed.datacenter();
          await seed.networkPool({ datacenterId: bare, vlans: [{ first: 3, last: 3 }] });
          expect(
            await ports.units.run((unit) => ports.allocations.defaultNetworkPool(unit, dc)),
          ).toBe(chosen);
          await expect(
            ports.units.run((unit) => ports.allocations.defaultNetworkPool(unit, bare)),
          ).rejects.toMatchObject({ code: "DV_NOT_FOUND" });
        }),
      );

      it(
        "say why a network pool cannot be used: Stalled, or not in the datacenter",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const other = await seed.datacenter();
          const fine = await seed.networkPool({ datacenterId: dc, vlans: [{ first: 1, last: 1 }] });
          const stalled = await seed.networkPool({
            datacenterId: dc,
            vlans: [{ first: 2, last: 2 }],
          });
          const away = await seed.networkPool({
            datacenterId: other,
            vlans: [{ first: 3, last: 3 }],
          });
          await seed.stallPool(stalled, "Overlap", "10.0.0.0/8 overlaps pool x");
          const why = (pool: string) =>
            ports.units.run((unit) => ports.allocations.unusablePool(unit, pool, dc));
          expect(await why(fine)).toBeUndefined();
          expect(await why(stalled)).toBe(
            `network pool "${stalled}" is Stalled (Overlap): 10.0.0.0/8 overlaps pool x`,
          );
          expect(await why(away)).toContain(
            `network pool "${away}" does not exist in datacenter "${dc}"`,
          );
          expect(await why("no-such-pool")).toContain("does not exist");
        }),
      );
    });

    describe("commands", () => {
      it(
        "answer for every command asked: pending, done with its result, failed with its dead letter",
        withSubject(async ({ ports, seed }) => {
          const id = () => seed.newId();
          const [pending, done, failed, discarded, skipped] = [id(), id(), id(), id(), id()];
          await seed.done("nett", done, { gateway: "10.0.0.1", vlan_id: 7 });
          await seed.skipped("nett", skipped);
          const letter = await seed.deadLetter("nett", failed, "port channel down");
          const thrown = await seed.deadLetter("maskin", discarded, "no such image");
          await seed.discard(thrown);
          const answer = await ports.units.run((unit) =>
            ports.commands.outcomes(unit, [
              { service: "nett", id: pending },
              { service: "nett", id: done },
              { service: "nett", id: failed },
              { service: "maskin", id: discarded },
              { service: "nett", id: skipped },
            ]),
          );
          expect(answer).toEqual(
            new Map([
              [pending, { state: "pending" }],
              [done, { state: "done", result: { gateway: "10.0.0.1", vlan_id: 7 } }],
              [failed, { state: "failed", reason: "port channel down", deadLetterId: letter }],
              [discarded, { state: "failed", reason: "no such image", deadLetterId: thrown }],
              // Handled without an outcome: the worker did not do it (its task had ended).
              [skipped, { state: "skipped" }],
            ]),
          );
          expect(await ports.units.run((unit) => ports.commands.outcomes(unit, []))).toEqual(
            new Map(),
          );
        }),
      );

      it(
        "follow a replayed dead letter to the command that replaced it, hop after hop",
        withSubject(async ({ ports, seed }) => {
          const id = () => seed.newId();
          const [first, second, third] = [id(), id(), id()];
          const [lone, replacement] = [id(), id()];
          await seed.replay(await seed.deadLetter("nett", first, "down"), second);
          await seed.replay(await seed.deadLetter("nett", lone, "down"), replacement);
          const outcome = async (commandId: string) =>
            (
              await ports.units.run((unit) =>
                ports.commands.outcomes(unit, [{ service: "nett", id: commandId }]),
              )
            ).get(commandId);
          // Replayed, its replacement not answered yet: in flight again.
          expect(await outcome(first)).toEqual({ state: "pending" });
          expect(await outcome(lone)).toEqual({ state: "pending" });
          const again = await seed.deadLetter("nett", second, "down again");
          expect(await outcome(first)).toEqual({
            state: "failed",
            reason: "down again",
            deadLetterId: again,
          });
          await seed.replay(again, third);
          await seed.done("nett", third, { gateway: "10.9.0.1" });
          expect(await outcome(first)).toEqual({ state: "done", result: { gateway: "10.9.0.1" } });
          await seed.done("nett", replacement, {});
          expect(await outcome(lone)).toEqual({ state: "done", result: {} });
        }),
      );

      it(
        "tell which queued commands could not be delivered yet, with the last error",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const [stuck, fine] = [seed.newId(), seed.newId()];
          await ports.units.run((unit) =>
            ports.commands.send(unit, [commandOf(stuck, r.id), commandOf(fine, r.id)]),
          );
          await seed.deliveryFailed(stuck, "no responders: the site dc9 is unreachable");
          const undelivered = await ports.units.run((unit) =>
            ports.commands.undelivered(unit, [stuck, fine, seed.newId()]),
          );
          expect(undelivered).toEqual(
            new Map([[stuck, "no responders: the site dc9 is unreachable"]]),
          );
          expect(await ports.units.run((unit) => ports.commands.undelivered(unit, []))).toEqual(
            new Map(),
          );
        }),
      );

      it(
        "queue a command once: sent again it is no new command, sent anew it is refused",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const id = seed.newId();
          await ports.units.run((unit) => ports.commands.send(unit, [commandOf(id, r.id)]));
          await ports.units.run((unit) => ports.commands.send(unit, [commandOf(id, r.id, true)]));
          await expect(
            ports.units.run((unit) => ports.commands.send(unit, [commandOf(id, r.id)])),
          ).rejects.toThrow();
          await ports.units.run((unit) => ports.commands.send(unit, []));
        }),
      );
    });

    describe("tasks", () => {
      it(
        "find each resource's open tasks and those of its generation, oldest first",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const r2 = await seed.resource({ kind: "network", datacenterId: dc });
          const r3 = await seed.resource({ kind: "network", datacenterId: dc });
          const old = await seed.task({ resource: r, operation: "network.create", generation: 0 });
          await seed.moveTask(old.id, "cancelled");
          const open = await seed.task({ resource: r, operation: "network.create" });
          const ended = await seed.task({ resource: r, operation: "network.update" });
          await seed.moveTask(ended.id, "started");
          await seed.moveTask(ended.id, "succeeded");
          const ahead = await seed.task({
            resource: r2,
            operation: "network.update",
            generation: 5,
          });
          const relevant = await ports.units.run((unit) =>
            ports.tasks.relevant(unit, [
              { id: r.id, generation: 1 },
              { id: r2.id, generation: 1 },
              { id: r3.id, generation: 1 },
            ]),
          );
          expect((relevant.get(r.id) ?? []).map((t) => [t.id, t.state])).toEqual([
            [open.id, "created"],
            [ended.id, "succeeded"],
          ]);
          expect((relevant.get(r2.id) ?? []).map((t) => t.id)).toEqual([ahead.id]);
          expect(relevant.get(r2.id)?.[0]).toMatchObject({
            operation: "network.update",
            resourceGeneration: 5,
            correlationId: ahead.correlationId,
          });
          expect(relevant.get(r3.id) ?? []).toEqual([]);
        }),
      );

      it(
        "move tasks in order, recording each move, and skip what the state machine forbids",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const t = await seed.task({ resource: r, operation: "network.create" });
          const u = await seed.task({ resource: r, operation: "network.update" });
          await ports.units.run((unit) =>
            ports.tasks.move(unit, [
              { task: t, verb: "queued", message: "" },
              { task: u, verb: "failed", message: "port channel down" },
              { task: t, verb: "started", message: "carried out by a later generation" },
              { task: t, verb: "succeeded", message: "" },
              // Ended: skipped, not refused.
              { task: u, verb: "succeeded", message: "" },
              { task: t, verb: "failed", message: "too late" },
            ]),
          );
          expect(await seed.readTask(t.id)).toMatchObject({ state: "succeeded", reason: "" });
          expect(await seed.readTask(u.id)).toMatchObject({
            state: "failed",
            reason: "port channel down",
          });
          expect(await seed.history(t.id)).toEqual([
            { verb: "created", message: "" },
            { verb: "queued", message: "" },
            { verb: "started", message: "carried out by a later generation" },
            { verb: "succeeded", message: "" },
          ]);
          expect((await seed.history(u.id)).map((e) => e.verb)).toEqual(["created", "failed"]);
          await ports.units.run((unit) => ports.tasks.move(unit, []));
        }),
      );

      it(
        "say what tasks not started yet wait for, without moving them",
        withSubject(async ({ ports, seed }) => {
          const dc = await seed.datacenter();
          const r = await seed.resource({ kind: "network", datacenterId: dc });
          const created = await seed.task({ resource: r, operation: "network.create" });
          const started = await seed.task({ resource: r, operation: "network.update" });
          await seed.moveTask(started.id, "started");
          const before = await seed.readTask(started.id);
          await ports.units.run((unit) =>
            ports.tasks.describeWait(unit, [
              { taskId: created.id, message: "waiting: site dc9 unreachable" },
              { taskId: started.id, message: "waiting: site dc9 unreachable" },
            ]),
          );
          expect(await seed.readTask(created.id)).toMatchObject({
            state: "created",
            progressMessage: "waiting: site dc9 unreachable",
          });
          expect((await seed.history(created.id)).map((e) => e.verb)).toEqual(["created"]);
          expect((await seed.readTask(started.id)).progressMessage).toBe(before.progressMessage);
          await ports.units.run((unit) => ports.tasks.describeWait(unit, []));
        }),
      );
    });
  });
}

/** Whether no two IPv4 prefixes share an address. */
function disjoint(prefixes: readonly string[]): boolean {
  const ranges = prefixes
    .map((p) => {
      const [address = "", bits = "32"] = p.split("/");
      const start = address.split(".").reduce((acc, o) => acc * 256 + Number(o), 0);
      return { start, end: start + 2 ** (32 - Number(bits)) };
    })
    .sort((a, b) => a.start - b.start);
  return ranges.every((r, i) => i === 0 || (ranges[i - 1]?.end ?? 0) <= r.start);
}
