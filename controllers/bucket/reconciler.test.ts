// The bucket reconciler on the in-memory world (no PostgreSQL): a bucket reserves its quota from
// the datacenter's storage capacity, Objekt creates it, and deleting it gives the capacity back.
import { describe, expect, it } from "vitest";
import { condition, dataOf, MemoryWorld } from "../../test/support/memory-world.js";
import { createLogger } from "../../src/observability/index.js";
import { TerminalError } from "../../src/reconcile/index.js";
import { BUCKET_CAPACITY, BucketReconciler } from "./reconciler.js";

const log = createLogger({ level: "silent", service: "test", datacenterId: "dc1" });
const GiB = 1024 ** 3;

function setup(capacityGiB = 100) {
  const world = new MemoryWorld();
  world.addDatacenter("dc1", { capacity: { [BUCKET_CAPACITY]: capacityGiB * GiB } });
  const reconciler = new BucketReconciler(world.deps());
  const pass = (...ids: string[]) =>
    reconciler.reconcileMany(
      ids.map((id) => `bucket:${id}`),
      log,
    );
  return { world, pass };
}

describe("BucketReconciler", () => {
  it("reserves the quota from the datacenter's capacity, has Objekt create it, reports the endpoint", async () => {
    const s = setup();
    const { resource, task } = s.world.request("bucket", { quotaGiB: 10, versioning: true });
    await s.pass(resource.id);

    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(10 * GiB);
    const create = s.world.lastCommand(resource.id);
    expect(create.subject).toBe("dv.objekt.cmd.create_bucket");
    expect(dataOf(create)).toMatchObject({
      resource_kind: "bucket",
      task_id: task.id,
      quota_bytes: 10 * GiB,
      versioning: true,
    });
    const pending = s.world.resource(resource.id);
    expect(condition(pending, "Reconciling")?.reason).toBe("Provisioning");
    expect(pending?.status).toMatchObject({ quotaBytes: 10 * GiB, endpoint: null });

    s.world.complete(create.id, { endpoint: "https://s3.dc1.example/b-1" });
    await s.pass(resource.id);
    const ready = s.world.resource(resource.id);
    expect(condition(ready, "Ready")?.status).toBe("True");
    expect(ready?.status.endpoint).toBe("https://s3.dc1.example/b-1");
    expect(ready?.observedGeneration).toBe(1);
    expect(s.world.task(task.id).state).toBe("succeeded");
  });

  it("stalls InsufficientCapacity for good when the quota does not fit", async () => {
    const s = setup(100);
    const { resource, task } = s.world.request("bucket", { quotaGiB: 101, versioning: false });
    const settled = await s.pass(resource.id);
    expect(settled.get(`bucket:${resource.id}`)).toEqual({
      ok: false,
      error: expect.any(TerminalError),
    });
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      reason: "InsufficientCapacity",
      message: expect.stringContaining(BUCKET_CAPACITY),
    });
    expect(s.world.task(task.id).state).toBe("failed");
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(0);
  });

  it("gives two buckets that fit alone but not together one each: the first, and a stall", async () => {
    const s = setup(100);
    const a = s.world.request("bucket", { quotaGiB: 60, versioning: false });
    const b = s.world.request("bucket", { quotaGiB: 60, versioning: false });
    // One unit for both is refused at commit; split, each goes alone.
    const settled = await s.pass(a.resource.id, b.resource.id);
    expect(settled.get(`bucket:${a.resource.id}`)?.ok).toBe(true);
    expect(settled.get(`bucket:${b.resource.id}`)).toEqual({
      ok: false,
      error: expect.any(TerminalError),
    });
    expect(condition(s.world.resource(a.resource.id), "Reconciling")?.reason).toBe("Provisioning");
    expect(condition(s.world.resource(b.resource.id), "Stalled")?.reason).toBe(
      "InsufficientCapacity",
    );
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(60 * GiB);
    expect(s.world.commandsFor(b.resource.id)).toEqual([]);
  });

  it("deletes the bucket in Objekt first, then gives its capacity back", async () => {
    const s = setup();
    const { resource } = s.world.request("bucket", { quotaGiB: 10, versioning: false });
    await s.pass(resource.id);
    s.world.complete(s.world.lastCommand(resource.id).id, { endpoint: "https://s3/b" });
    await s.pass(resource.id);

    const deletion = s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    const remove = s.world.lastCommand(resource.id);
    expect(remove.subject).toBe("dv.objekt.cmd.delete_bucket");
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(10 * GiB);
    s.world.complete(remove.id);
    await s.pass(resource.id);
    expect(s.world.resource(resource.id)).toBeUndefined();
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(0);
    expect(s.world.task(deletion.task.id).state).toBe("succeeded");
  });

  it("stalls DeleteFailed when Objekt cannot delete it, keeping the capacity", async () => {
    const s = setup();
    const { resource } = s.world.request("bucket", { quotaGiB: 10, versioning: false });
    await s.pass(resource.id);
    s.world.complete(s.world.lastCommand(resource.id).id, { endpoint: "https://s3/b" });
    await s.pass(resource.id);
    const deletion = s.world.requestDeletion(resource.id);
    await s.pass(resource.id);
    s.world.deadLetter(s.world.lastCommand(resource.id).id, "bucket not empty");
    await s.pass(resource.id);
    expect(condition(s.world.resource(resource.id), "Stalled")).toMatchObject({
      reason: "DeleteFailed",
      message: "bucket not empty",
    });
    expect(s.world.task(deletion.task.id)).toMatchObject({
      state: "failed",
      reason: "bucket not empty",
    });
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(10 * GiB);
  });

  it("splits a batch whose unit fails down to the key whose failure it is", async () => {
    const s = setup();
    const changes = [1, 2, 3, 4].map(() =>
      s.world.request("bucket", { quotaGiB: 1, versioning: false }),
    );
    const broken = changes[2]!.resource.id;
    const refused = new Error("status write refused");
    s.world.inject("writeStatus", broken, refused);
    const settled = await s.pass(...changes.map((c) => c.resource.id));
    for (const { resource } of changes) {
      if (resource.id === broken) {
        expect(settled.get(`bucket:${resource.id}`)).toEqual({ ok: false, error: refused });
        expect(s.world.resource(resource.id)?.status).toEqual({});
        expect(s.world.commandsFor(resource.id)).toEqual([]);
      } else {
        expect(settled.get(`bucket:${resource.id}`)?.ok).toBe(true);
        expect(condition(s.world.resource(resource.id), "Reconciling")?.reason).toBe(
          "Provisioning",
        );
      }
    }
    // Nothing of the failed key's unit stayed: only the others' capacity is used.
    expect(s.world.capacityUsed("dc1", BUCKET_CAPACITY)).toBe(3 * GiB);
  });

  it("does not split a batch when the database itself is down: every key waits its backoff", async () => {
    const s = setup();
    const changes = [1, 2, 3, 4].map(() =>
      s.world.request("bucket", { quotaGiB: 1, versioning: false }),
    );
    s.world.down = true;
    const before = s.world.unitsBegun;
    const settled = await s.pass(...changes.map((c) => c.resource.id));
    // One attempt, not the seven a split down to single keys would make against a dead database.
    expect(s.world.unitsBegun - before).toBe(1);
    for (const { resource } of changes)
      expect(settled.get(`bucket:${resource.id}`)).toMatchObject({
        ok: false,
        error: { message: "connection refused" },
      });

    s.world.clearFaults();
    const again = await s.pass(...changes.map((c) => c.resource.id));
    for (const { resource } of changes) expect(again.get(`bucket:${resource.id}`)?.ok).toBe(true);
  });
});
