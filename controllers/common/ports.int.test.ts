// The reconcile ports contract against PostgreSQL: postgresPorts over the contexts' stores, seeded
// through those stores as the API, the platform sync, the workers, the relay and the operator
// write them. ports.test.ts runs the same cases against the in-memory world.
import { afterAll, beforeAll } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { reconcilePortsContract } from "../../test/support/reconcile-contract.js";
import { createServices, type Services } from "../../src/app/services.js";
import { LeaseStore } from "../../src/contexts/runtime/index.js";
import { inTransaction, type Tx } from "../../src/db/index.js";
import { newId } from "../../src/kernel/index.js";
import { workerConsumer, type WorkerService } from "../../src/messaging/index.js";
import type { ReconcilePorts } from "../index.js";
import { postgresPorts } from "./postgres.js";

const SHARDS = 8;

let t: TestDatabase;
let services: Services;
let leases: LeaseStore;
let ports: ReconcilePorts;
beforeAll(async () => {
  t = await createTestDatabase();
  services = createServices(t.db, newId);
  leases = new LeaseStore(t.db);
  await leases.ensureShards(SHARDS);
  ports = postgresPorts({ ...services, leases, shards: SHARDS });
});
afterAll(async () => t.drop());

const tx = <T>(fn: (q: Tx) => Promise<T>) => inTransaction(t.db, fn);
let sequence = 0;
const unique = (prefix: string) => `${prefix}${++sequence}-${newId().slice(-6)}`;
const tenancy = { tenantId: newId(), projectId: newId(), environmentId: newId() };

reconcilePortsContract("PostgreSQL", async () => ({
  ports,
  close: async () => {},
  seed: {
    newId,
    async datacenter(capacity = {}) {
      const name = unique("dc");
      await tx(async (q) => {
        await services.inventory.applyDatacenter(q, {
          name,
          displayName: name,
          site: "osl",
          failureDomain: "a",
          generation: 1,
          spec: {},
        });
        for (const [resource, total] of Object.entries(capacity))
          await services.inventory.setCapacity(q, { datacenterId: name, resource, total });
      });
      return name;
    },
    async networkPool(input) {
      const name = unique("np");
      await tx((q) =>
        services.inventory.applyNetworkPool(q, {
          name,
          datacenterId: input.datacenterId,
          generation: 1,
          isDefault: input.isDefault ?? false,
          vlanRanges: input.vlans ?? [],
          prefixes: input.prefixes ?? [],
        }),
      );
      return name;
    },
    async stallPool(name, reason, message) {
      await tx(async (q) => {
        await services.platform.upsert(q, { kind: "NetworkPool", name, generation: 2, spec: {} });
        await services.platform.setStatus(
          q,
          "NetworkPool",
          name,
          { conditions: [{ type: "Stalled", status: "True", reason, message }] },
          2,
        );
      });
    },
    async servers({ datacenterId, machineClass, count }) {
      const pool = unique("sp");
      const names = Array.from(
        { length: count },
        (_, i) => `${pool}-${String(i).padStart(3, "0")}`,
      );
      await tx((q) =>
        services.inventory.applyServerPool(q, {
          name: pool,
          datacenterId,
          generation: 1,
          servers: names.map((name) => ({ name, machineClass, cpuCores: 8, memoryMib: 8192 })),
        }),
      );
      return names;
    },
    resource: ({ kind, datacenterId, spec = {} }) =>
      tx((q) =>
        services.inventory.createResource(
          q,
          { kind, datacenterId, name: unique(kind), spec, ...tenancy },
          { charge: false },
        ),
      ),
    async requestDeletion(id) {
      const r = await services.inventory.getResourceById(id);
      return tx((q) => services.inventory.requestResourceDeletion(q, r.tenantId, id, r.version));
    },
    readResource: (id) => services.inventory.getResourceById(id).catch(() => undefined),
    task: ({ resource, operation, generation }) =>
      tx((q) =>
        services.tasks.create(q, {
          operation,
          resourceKind: resource.kind,
          resourceId: resource.id,
          resourceGeneration: generation ?? resource.generation,
          tenantId: resource.tenantId,
          projectId: resource.projectId,
          environmentId: resource.environmentId,
          datacenterId: resource.datacenterId,
          actor: "operator:test",
          correlationId: unique("corr"),
        }),
      ),
    async moveTask(id, verb) {
      await tx((q) => services.tasks.transition(q, id, verb, { actor: "test", message: "" }));
    },
    readTask: (id) => services.taskStore.get(id),
    history: async (id) =>
      (await services.taskStore.history(id)).map(({ verb, message }) => ({ verb, message })),
    async done(service, id, result) {
      await tx((q) =>
        services.inbox.record(q, workerConsumer(service as WorkerService), id, {
          subject: `dv.${service}.evt.thing.done`,
          envelope: { id: newId(), data: result },
        }),
      );
    },
    async skipped(service, id) {
      await tx((q) => services.inbox.record(q, workerConsumer(service as WorkerService), id, null));
    },
    async deadLetter(service, messageId, reason) {
      const id = newId();
      await tx(async (q) => {
        await services.deadLetterStore.create(q, {
          id,
          messageId,
          subject: `dv.${service}.cmd.apply`,
          service,
          type: `${service}.thing.apply`,
          envelope: { id: messageId, data: {} },
          errors: [{ at: new Date().toISOString(), code: "permanent", message: reason }],
          deliveryCount: 1,
          reason,
          correlationId: messageId,
          causationId: null,
          taskId: null,
        });
        await services.inbox.record(q, workerConsumer(service as WorkerService), messageId, null);
      });
      return id;
    },
    async replay(deadLetterId, newCommandId) {
      await tx((q) =>
        services.deadLetterStore.resolve(
          q,
          deadLetterId,
          "replayed",
          "operator:test",
          newCommandId,
        ),
      );
    },
    async discard(deadLetterId) {
      await tx((q) =>
        services.deadLetterStore.resolve(q, deadLetterId, "discarded", "operator:test"),
      );
    },
    async deliveryFailed(commandId, error) {
      // The relay claims what is due, publishes the rest and fails this one.
      await services.outbox.relay(1_000, async (messages) => ({
        sent: messages.filter((m) => m.id !== commandId).map((m) => m.id),
        failed: messages
          .filter((m) => m.id === commandId)
          .map((m) => ({ id: m.id, error, retryInMs: 60_000 })),
      }));
    },
    async grant(shard, holder) {
      const grant = await leases.acquire(shard, holder, 60_000);
      if (!grant) throw new Error(`shard ${shard} is held`);
      return grant;
    },
    release: (grant, holder) => leases.release(grant, holder),
  },
}));
