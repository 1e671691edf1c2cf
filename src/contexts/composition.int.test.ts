// Seed 003: an intent, the reservations it needs, its task, its audit record and its outbox
// message commit in one transaction, across contexts, each acting as its own role.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";
import { AuditStore } from "./audit/index.js";
import { InventoryStore } from "./inventory/index.js";
import { OutboxStore } from "./runtime/index.js";
import { TaskStore } from "./task/index.js";
import { TenancyStore } from "./tenancy/index.js";

let t: TestDatabase;
let tenancy: TenancyStore;
let inventory: InventoryStore;
let tasks: TaskStore;
let audit: AuditStore;
let outbox: OutboxStore;

beforeAll(async () => {
  t = await createTestDatabase();
  tenancy = new TenancyStore(t.db, newId);
  inventory = new InventoryStore(t.db, newId);
  tasks = new TaskStore(t.db, newId);
  audit = new AuditStore(t.db);
  outbox = new OutboxStore(t.db);
  await inTransaction(t.db, async (tx) => {
    await inventory.applyDatacenter(tx, {
      name: "dc1",
      displayName: "",
      site: "osl",
      failureDomain: "a",
      generation: 1,
      spec: {},
    });
    await inventory.applyNetworkPool(tx, {
      name: "tenant-nets",
      datacenterId: "dc1",
      generation: 1,
      vlanRanges: [{ first: 100, last: 100 }],
      prefixes: ["10.1.0.0/24"],
    });
  });
});
afterAll(async () => t.drop());

async function requestNetwork(name: string, failAfter?: "outbox") {
  return inTransaction(t.db, async (tx) => {
    const tenant = await tenancy.createTenant(tx, { name });
    const project = await tenancy.createProject(tx, { tenantId: tenant.id, name: "p" });
    const env = await tenancy.createEnvironment(tx, {
      tenantId: tenant.id,
      projectId: project.id,
      name: "e",
      datacenterId: "dc1",
    });
    const network = await inventory.createResource(tx, {
      kind: "network",
      tenantId: tenant.id,
      projectId: project.id,
      environmentId: env.id,
      datacenterId: "dc1",
      name: "web",
      spec: { prefixLength: 26 },
    });
    const vlan = await inventory.reserveVlan(tx, {
      networkPool: "tenant-nets",
      owner: { kind: "network", id: network.id },
    });
    const { prefix } = await inventory.reservePrefix(tx, {
      networkPool: "tenant-nets",
      prefixLength: 26,
      owner: { kind: "network", id: network.id },
    });
    const task = await tasks.create(tx, {
      operation: "network.create",
      resourceKind: "network",
      resourceId: network.id,
      tenantId: tenant.id,
      datacenterId: "dc1",
      actor: "user:alice",
      correlationId: "corr",
    });
    await audit.record(tx, {
      actor: "user:alice",
      tenantId: tenant.id,
      datacenterId: "dc1",
      action: "network.create",
      resourceKind: "network",
      resourceId: network.id,
      after: { vlan: vlan.vlanId, prefix },
      correlationId: "corr",
    });
    await outbox.enqueue(tx, [
      { id: newId(), subject: "dv.nett.cmd.apply", envelope: { task: task.id } },
    ]);
    if (failAfter === "outbox") throw new Error("crash before commit");
    return { network, task };
  });
}

const counts = () =>
  t.admin.query<{
    tenants: number;
    resources: number;
    vlans: number;
    blocks: number;
    tasks: number;
    audit: number;
    outbox: number;
  }>(`
    SELECT (SELECT count(*)::int FROM tenancy.tenants) AS tenants,
           (SELECT count(*)::int FROM inventory.resources) AS resources,
           (SELECT count(*)::int FROM inventory.vlans WHERE owner_id IS NOT NULL) AS vlans,
           (SELECT count(*)::int FROM inventory.ip_blocks WHERE owner_id IS NOT NULL) AS blocks,
           (SELECT count(*)::int FROM task.tasks) AS tasks,
           (SELECT count(*)::int FROM audit.records) AS audit,
           (SELECT count(*)::int FROM runtime.outbox) AS outbox`);

describe("one transaction across contexts", () => {
  it("commits nothing when it fails at the last step", async () => {
    const before = await counts();
    await expect(requestNetwork("crashy", "outbox")).rejects.toThrow("crash before commit");
    expect(await counts()).toEqual(before);
  });

  it("commits the intent, its reservations, task, audit and outbox message together", async () => {
    const before = (await counts())[0];
    const { network, task } = await requestNetwork("fine");
    const after = (await counts())[0];
    expect(after).toEqual({
      tenants: (before?.tenants ?? 0) + 1,
      resources: (before?.resources ?? 0) + 1,
      vlans: 1,
      blocks: 1,
      tasks: (before?.tasks ?? 0) + 1,
      audit: (before?.audit ?? 0) + 1,
      outbox: (before?.outbox ?? 0) + 1,
    });
    expect(await inventory.allocationsOf(network.id)).toMatchObject({
      vlans: [{ vlanId: 100 }],
      prefixes: [{ prefix: "10.1.0.0/26" }],
    });
    expect((await tasks.get(task.id)).state).toBe("created");
  });
});
