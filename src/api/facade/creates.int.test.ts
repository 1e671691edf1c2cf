// Creates that arrive together are written together (ResourceFacade's group commit): under
// concurrent requests of two tenants each request still gets its own answer — a name taken is
// refused for that request alone — and every resource recorded has its own task, its `created`
// history, its outbox event, its audit record and its quota charge, as one at a time would.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Plane, startPlane, tenantPath } from "../../../test/support/plane.js";
import type { Resource } from "../../contexts/inventory/index.js";
import { AlreadyExistsError } from "../../kernel/index.js";
import type { ResourcePath } from "../index.js";

let p: Plane;
const operator = {
  principal: { subject: "test", role: "operator" as const },
  correlationId: "test",
};

beforeAll(async () => {
  p = await startPlane({ relay: false });
});
afterAll(async () => p?.close());

const tenant = (name: string): Promise<ResourcePath> => tenantPath(p.facade, name);

const create = (path: ResourcePath, name: string) =>
  p.facade.createResource(operator, path, "network", { name, spec: { prefixLength: 28 } });

/** What was recorded with each resource: its tasks, their history, outbox events and audit. */
async function recordedWith(ids: readonly string[]) {
  const rows = await p.t.admin.query<{
    id: string;
    tasks: string;
    created: string;
    events: string;
    audits: string;
  }>(
    `SELECT r.id,
            (SELECT count(*) FROM task.tasks t WHERE t.resource_id = r.id AND t.operation = 'network.create') AS tasks,
            (SELECT count(*) FROM task.task_events e JOIN task.tasks t ON t.id = e.task_id
              WHERE t.resource_id = r.id AND e.verb = 'created' AND e.seq = 1) AS created,
            (SELECT count(*) FROM runtime.outbox o JOIN task.tasks t ON o.envelope ->> 'subject' = t.id::text
              WHERE t.resource_id = r.id) AS events,
            (SELECT count(*) FROM audit.records a WHERE a.resource_id = r.id::text AND a.action = 'network.create') AS audits
       FROM inventory.resources r WHERE r.id = ANY($1::uuid[])`,
    [ids],
  );
  return rows.map((r) => ({
    id: r.id,
    tasks: Number(r.tasks),
    created: Number(r.created),
    events: Number(r.events),
    audits: Number(r.audits),
  }));
}

describe("creates written together", () => {
  // The name taken twice lands in one batch: that batch is refused as a whole and each of its
  // creates is written alone (the fallback). The next case covers batches that commit.
  it("answers each of 40 concurrent creates of two tenants on its own when a batch falls back, a taken name refused alone", async () => {
    const [a, b] = [await tenant("batch-a"), await tenant("batch-b")];
    // Twenty each; tenant a asks for "dup" twice.
    const requests = Array.from({ length: 40 }, (_, i) =>
      i % 2 === 0
        ? { path: a, name: i === 38 ? "dup" : i === 36 ? "dup" : `a${i}` }
        : { path: b, name: `b${i}` },
    );
    const outcomes = await Promise.allSettled(requests.map((r) => create(r.path, r.name)));

    const refused = outcomes.flatMap((o, i) => (o.status === "rejected" ? [{ i, o }] : []));
    expect(refused).toHaveLength(1);
    expect(requests[refused[0]?.i ?? -1]?.name).toBe("dup");
    expect(refused[0]?.o).toMatchObject({ reason: expect.any(AlreadyExistsError) });

    const made = outcomes.flatMap((o, i) =>
      o.status === "fulfilled" ? [{ request: requests[i], ...o.value }] : [],
    );
    expect(made).toHaveLength(39);
    for (const { request, resource, task } of made) {
      // Each answer is its own request's resource, and the task that builds it.
      expect(resource.name).toBe(request?.name);
      expect(resource.tenantId).toBe(request?.path.tenant);
      expect(task).toMatchObject({ resourceId: resource.id, state: "created" });
    }
    expect(new Set(made.map((m) => m.task.id)).size).toBe(39);
    for (const row of await recordedWith(made.map((m) => m.resource.id)))
      expect(row).toEqual({ id: row.id, tasks: 1, created: 1, events: 1, audits: 1 });

    // Every /28 charged to its own tenant: 19 of a, 20 of b.
    const usageA = await p.services.inventory.quotas.usage(a.tenant);
    const usageB = await p.services.inventory.quotas.usage(b.tenant);
    expect([usageA.get("vlans/dc1"), usageA.get("addresses/dc1")]).toEqual([19, 19 * 16]);
    expect([usageB.get("vlans/dc1"), usageB.get("addresses/dc1")]).toEqual([20, 20 * 16]);
  });

  it("writes batches that commit, and records nothing twice when the same creates are sent again", async () => {
    const c = await tenant("batch-c");
    const first = await Promise.all(Array.from({ length: 10 }, (_, i) => create(c, `n${i}`)));
    const again = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) => create(c, `n${i}`)),
    );
    expect(
      again.every((o) => o.status === "rejected" && o.reason instanceof AlreadyExistsError),
    ).toBe(true);
    const ids = first.map((m: { resource: Resource }) => m.resource.id);
    expect((await recordedWith(ids)).every((r) => r.tasks === 1 && r.audits === 1)).toBe(true);
    expect((await p.services.inventory.quotas.usage(c.tenant)).get("vlans/dc1")).toBe(10);
  });
});
