// The reconcile ports over PostgreSQL: each is a thin adapter to the stores of the context that
// owns the data (inventory, platform, task, runtime), which run the SQL. A unit of work is one
// transaction; the adapters pass it to the stores as their `Tx`.
import type { InventoryStore } from "../../src/contexts/inventory/index.js";
import type { PlatformStore } from "../../src/contexts/platform/index.js";
import type {
  DeadLetterStore,
  InboxStore,
  LeaseStore,
  OutboxStore,
} from "../../src/contexts/runtime/index.js";
import type { TaskStore } from "../../src/contexts/task/index.js";
import {
  type Database,
  inTransaction,
  isOutage,
  pipelined,
  type Tx,
  withSavepoint,
} from "../../src/db/index.js";
import { workerConsumer } from "../../src/messaging/index.js";
import type { TaskService } from "../../src/workflow/index.js";
import type { Holdings, Outcome, ReconcilePorts, Unit } from "./ports.js";

/**
 * The stores the PostgreSQL ports are built on, named as the control plane's services name them
 * (`createServices` in src/app), so `postgresPorts({ ...services, leases, shards })` builds them.
 */
export interface PostgresPortStores {
  readonly db: Database;
  readonly inventory: InventoryStore;
  readonly platform: PlatformStore;
  readonly taskStore: TaskStore;
  readonly tasks: TaskService;
  readonly outbox: OutboxStore;
  readonly inbox: InboxStore;
  readonly deadLetterStore: DeadLetterStore;
  readonly leases: LeaseStore;
  /** The shard count of the leases (for the fence's record of which shard a write was under). */
  readonly shards: number;
}

/** A replayed dead letter points to the command that replaced it; chains are followed this far. */
const MAX_REPLAY_HOPS = 10;

const tx = (unit: Unit): Tx => unit as unknown as Tx;
const unitOf = (t: Tx): Unit => t as unknown as Unit;

/** The reconcile ports over PostgreSQL. */
export function postgresPorts(s: PostgresPortStores): ReconcilePorts {
  const holdingsOf = (a: {
    vlans: readonly { vlanId: number; networkPool: string }[];
    prefixes: readonly { prefix: string; networkPool: string }[];
    servers: readonly { id: string; name: string; machineClass: string }[];
    capacity: readonly { resource: string; amount: number }[];
  }): Holdings => ({
    vlans: a.vlans.map((v) => ({ vlanId: v.vlanId, networkPool: v.networkPool })),
    prefixes: a.prefixes.map((p) => ({ prefix: p.prefix, networkPool: p.networkPool })),
    servers: a.servers.map((v) => ({ id: v.id, name: v.name, machineClass: v.machineClass })),
    capacity: a.capacity.map((c) => ({ resource: c.resource, amount: c.amount })),
  });
  return {
    units: {
      run: (fn) => inTransaction(s.db, (t) => fn(unitOf(t))),
      savepoint: (unit, fn) => withSavepoint(tx(unit), (t) => fn(unitOf(t))),
      outage: (err) => isOutage(s.db, err),
      async together<T extends readonly unknown[]>(
        unit: Unit,
        work: { readonly [K in keyof T]: () => Promise<T[K]> },
      ): Promise<T> {
        if (pipelined(tx(unit))) return (await Promise.all(work.map((w) => w()))) as unknown as T;
        const results: unknown[] = [];
        for (const w of work) results.push(await w());
        return results as unknown as T;
      },
    },
    fences: {
      hold: (unit, grants, holder) => s.leases.holdFences(tx(unit), grants, holder, s.shards),
    },
    resources: {
      lock: (unit, ids) => s.inventory.lockResources(tx(unit), ids),
      writeStatus: (unit, writes) => s.inventory.writeStatuses(tx(unit), writes),
      async remove(unit, ids) {
        for (const id of ids) await s.inventory.removeResource(tx(unit), id);
      },
    },
    allocations: {
      async holdings(unit, ownerIds) {
        const held = await s.inventory.holdings(tx(unit), ownerIds);
        return new Map([...held].map(([id, a]) => [id, holdingsOf(a)]));
      },
      defaultNetworkPool: (unit, datacenterId) =>
        s.inventory.defaultNetworkPool(datacenterId, tx(unit)),
      reserveVlan: async (unit, input) => (await s.inventory.reserveVlan(tx(unit), input)).vlanId,
      reservePrefix: async (unit, input) =>
        (await s.inventory.reservePrefix(tx(unit), input)).prefix,
      reserveMany: (unit, needs) => s.inventory.reserveMany(tx(unit), needs),
      reserveServers: async (unit, input) =>
        (await s.inventory.reserveServers(tx(unit), input)).map((v) => ({
          id: v.id,
          name: v.name,
          machineClass: v.machineClass,
        })),
      reserveCapacity: (unit, input) => s.inventory.reserveCapacity(tx(unit), input),
      releaseAll: async (unit, owner) => holdingsOf(await s.inventory.releaseAll(tx(unit), owner)),
      async releaseVlansExcept(unit, owner, networkPool) {
        await s.inventory.releaseVlansExcept(tx(unit), owner, networkPool);
      },
      async releasePrefixesExcept(unit, owner, keep) {
        await s.inventory.releasePrefixesExcept(tx(unit), owner, keep);
      },
      async unusablePool(unit, pool, datacenterId) {
        const stalled = await s.platform.stalled("NetworkPool", pool, tx(unit));
        if (stalled)
          return `network pool "${pool}" is Stalled (${stalled.reason}): ${stalled.message}`;
        const pools = (await s.inventory.offers(tx(unit))).get(datacenterId)?.networkPools ?? [];
        if (!pools.some((p) => p.name === pool))
          return `network pool "${pool}" does not exist in datacenter "${datacenterId}" (it has: ${pools.map((p) => p.name).join(", ") || "none"}); change the spec to name one that does`;
        return undefined;
      },
    },
    commands: {
      async send(unit, commands) {
        const toOutbox = (again: boolean) =>
          commands
            .filter((c) => c.again === again)
            .map((c) => ({
              id: c.id,
              subject: c.subject,
              envelope: c.envelope,
              headers: c.headers,
            }));
        await s.outbox.enqueue(tx(unit), toOutbox(false));
        await s.outbox.enqueue(tx(unit), toOutbox(true), { resend: true });
      },
      async outcomes(unit, commands) {
        const answer = new Map<string, Outcome>();
        // Where each asked command's answer stands now: its own id, or the command a replay of
        // its dead letter sent instead.
        let asking = commands.map((c) => ({
          asked: c.id,
          service: c.service,
          id: c.id,
          handled: false,
        }));
        for (let hop = 0; hop < MAX_REPLAY_HOPS && asking.length > 0; hop++) {
          const handled = await s.inbox.handledMany(
            tx(unit),
            asking.map((c) => ({ consumer: workerConsumer(c.service), messageId: c.id })),
          );
          const open: (typeof asking)[number][] = [];
          for (const c of asking) {
            const key = `${workerConsumer(c.service)}/${c.id}`;
            const outcome = handled.get(key);
            if (outcome) {
              const data = (outcome.envelope.data ?? {}) as Record<string, unknown>;
              answer.set(c.asked, { state: "done", result: data });
            } else open.push({ ...c, handled: handled.has(key) });
          }
          const dead = await s.deadLetterStore.newestByMessages(
            tx(unit),
            open.map((c) => c.id),
          );
          asking = [];
          for (const c of open) {
            const letter = dead.get(c.id);
            // Handled without an outcome and no dead letter: the worker skipped it (its task had
            // ended). A dead-lettered command is handled without an outcome too.
            if (!letter) answer.set(c.asked, { state: c.handled ? "skipped" : "pending" });
            else if (letter.state === "open" || letter.state === "discarded")
              answer.set(c.asked, {
                state: "failed",
                reason: letter.reason,
                deadLetterId: letter.id,
              });
            else if (!letter.replayMessageId) answer.set(c.asked, { state: "pending" });
            else asking.push({ ...c, id: letter.replayMessageId, handled: false });
          }
        }
        for (const c of asking) answer.set(c.asked, { state: "pending" });
        return answer;
      },
      async undelivered(unit, ids) {
        const rows = await s.outbox.undelivered(ids, tx(unit));
        return new Map(rows.flatMap((r) => (r.lastError ? [[r.id, r.lastError] as const] : [])));
      },
    },
    tasks: {
      relevant: (unit, resources) => s.taskStore.relevantFor(tx(unit), resources),
      async move(unit, moves) {
        await s.tasks.transitionMany(
          tx(unit),
          moves.map((m) => ({
            taskId: m.task.id,
            verb: m.verb,
            input: { actor: "sentral", message: m.message },
            context: { correlationId: m.task.correlationId },
          })),
        );
      },
      async describeWait(unit, waits) {
        await s.taskStore.describeWaits(tx(unit), waits);
      },
    },
  };
}
