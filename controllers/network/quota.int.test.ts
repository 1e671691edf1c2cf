// Fairness end to end (real PostgreSQL, nats-server, controllers and the Nett worker): a tenant
// that tries to take a whole network pool is stopped by its address quota, sequentially and under
// 32 concurrent requests, and another tenant's /28 in the same pool still reaches Ready. A network
// whose pool is gone by the time it is reconciled fails with a message that says so.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type Plane, startPlane, tenantPath } from "../../test/support/plane.js";
import type { ResourcePath } from "../../src/api/index.js";
import type { Resource } from "../../src/contexts/inventory/index.js";
import { inTransaction } from "../../src/db/index.js";
import { QuotaExceededError } from "../../src/kernel/index.js";
import { PlatformSync } from "../index.js";

let p: Plane;
const operator = {
  principal: { subject: "test", role: "operator" as const },
  correlationId: "test",
};

/** A pool of 512 addresses: thirty-two /28s. */
const SMALL_POOL = "dc1-small";

beforeAll(async () => {
  p = await startPlane({ controllers: true, workers: ["nett"] });
  const sync = new PlatformSync(p.services);
  for (const object of [
    {
      kind: "NetworkPool",
      name: SMALL_POOL,
      spec: {
        datacenter: "dc1",
        vlanRanges: [{ start: 4000, end: 4094 }],
        prefixes: ["10.250.0.0/23"],
      },
    },
    // Every tenant may hold 128 addresses per datacenter: a quarter of the small pool.
    { kind: "PlatformPolicy", name: "default", spec: { quotas: { addresses: 128 } } },
  ]) {
    expect(await sync.apply({ ...object, generation: 1 })).toMatchObject({ ok: true });
  }
});
afterAll(async () => p.close());

const tenant = (name: string): Promise<ResourcePath> => tenantPath(p.facade, name);

const request = (path: ResourcePath, name: string) =>
  p.facade.createResource(operator, path, "network", {
    name,
    spec: { prefixLength: 28, networkPool: SMALL_POOL },
  });

async function ready(resource: Resource): Promise<Resource> {
  return eventually(
    async () => {
      const r = await p.services.inventory.getResourceById(resource.id);
      const conditions = (r.status.conditions ?? []) as { type: string; status: string }[];
      return conditions.some((c) => c.type === "Ready" && c.status === "True") ? r : undefined;
    },
    60_000,
    `network ${resource.name} to be Ready`,
  );
}

async function networksOf(path: ResourcePath): Promise<number> {
  const page = await p.facade.listResources(operator, path, "network", {
    limit: 100,
    after: undefined,
    labels: [],
  });
  return page.items.length;
}

describe("address quotas keep a pool for everyone", () => {
  it("stops one tenant at its quota, one request after the other, and another tenant's /28 is Ready", async () => {
    const greedy = await tenant("greedy");
    const accepted: Resource[] = [];
    let refusal: unknown;
    // The whole pool, one /28 after the other.
    for (let i = 0; i < 32 && refusal === undefined; i++) {
      try {
        accepted.push((await request(greedy, `n${i}`)).resource);
      } catch (err) {
        refusal = err;
      }
    }
    expect(accepted).toHaveLength(8);
    expect(refusal).toBeInstanceOf(QuotaExceededError);
    expect(refusal).toMatchObject({ quota: "addresses", scope: "dc1", limit: 128, used: 128 });
    expect(await networksOf(greedy)).toBe(8);

    const modest = await tenant("modest");
    const theirs = await request(modest, "mine");
    const live = await ready(theirs.resource);
    expect(live.status.cidr).toMatch(/^10\.250\.[01]\.\d+\/28$/);
    const greedyLive = await Promise.all(accepted.map(ready));
    const cidrs = new Set([live, ...greedyLive].map((r) => String(r.status.cidr)));
    expect(cidrs.size).toBe(9);
  });

  it("holds under 32 concurrent requests: exactly the quota is granted, and the rest refused", async () => {
    const burst = await tenant("burst");
    const outcomes = await Promise.allSettled(
      Array.from({ length: 32 }, (_, i) => request(burst, `b${i}`)),
    );
    const granted = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.filter(
      (o) => o.status === "rejected" && o.reason instanceof QuotaExceededError,
    );
    expect(granted).toHaveLength(8);
    expect(refused).toHaveLength(24);
    expect(await networksOf(burst)).toBe(8);
    const usage = await p.services.inventory.quotas.usage(burst.tenant);
    expect(usage.get("addresses/dc1")).toBe(128);
    expect(usage.get("vlans/dc1")).toBe(8);

    // Another tenant's /28 still reaches Ready, next to the burst's networks.
    const latecomer = await tenant("latecomer");
    const late = await request(latecomer, "late");
    const burstIds = (granted as PromiseFulfilledResult<{ resource: Resource }>[]).map(
      (o) => o.value.resource,
    );
    const [lateLive, ...burstLive] = await Promise.all([late.resource, ...burstIds].map(ready));
    expect(lateLive?.status.cidr).toMatch(/\/28$/);
    expect(burstLive).toHaveLength(8);
  });

  it("fails a network whose pool does not exist with a message that says so", async () => {
    const path = await tenant("stale");
    // As if the pool was removed from Git after the request was admitted.
    const { resource, taskId } = await inTransaction(p.services.db, async (tx) => {
      const created = await p.services.inventory.createResource(tx, {
        kind: "network",
        tenantId: path.tenant,
        projectId: path.project,
        environmentId: path.environment,
        datacenterId: "dc1",
        name: "orphan",
        spec: { prefixLength: 28, networkPool: "gone" },
      });
      const task = await p.services.tasks.create(tx, {
        operation: "network.create",
        resourceKind: "network",
        resourceId: created.id,
        resourceGeneration: 1,
        tenantId: path.tenant,
        projectId: path.project,
        environmentId: path.environment,
        datacenterId: "dc1",
        actor: "user:test",
        correlationId: "stale",
      });
      return { resource: created, taskId: task.id };
    });
    await p.taskReaches(taskId, ["failed"], 30_000);
    const task = await p.services.taskStore.get(taskId);
    expect(task.reason).toContain('network pool "gone" does not exist in datacenter "dc1"');
    const stalled = await p.services.inventory.getResourceById(resource.id);
    expect(stalled.status.conditions).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: "Stalled", status: "True", reason: "PoolUnavailable" }),
      ]),
    );
  });
});
