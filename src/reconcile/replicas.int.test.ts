// Three `dv controller` processes share 5,000 resources over real PostgreSQL and NATS; one is
// killed: its shards move within the lease duration, every resource converges, each side effect
// happens once, and no write was ever accepted from a replica that had lost its shard.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { fencedWrites, installFenceAudit, staleWrites } from "../../test/support/fence-audit.js";
import { FAST_CONTROLLER, type Plane, startPlane } from "../../test/support/plane.js";
import { LeaseStore } from "../contexts/runtime/index.js";

const RESOURCES = 5_000;

let p: Plane;
beforeAll(async () => {
  p = await startPlane({
    workers: ["objekt"],
    workerSettings: { concurrency: 64 },
    // A full resync of 5,000 keys every 2 s (the small-test setting) would be most of the work.
    controller: { resyncMs: 30_000 },
  });
  await installFenceAudit(p.t.admin);
});
afterAll(async () => p.close());

async function readyCount(): Promise<number> {
  const [row] = await p.t.admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM inventory.resources
      WHERE observed_generation = generation AND status->'conditions' @> '[{"type":"Ready","status":"True"}]'`,
  );
  return row?.n ?? 0;
}

describe("three controller replicas", () => {
  it(`share ${RESOURCES} resources and survive the loss of one`, async () => {
    for (let batch = 0; batch < RESOURCES / 100; batch++)
      await p.createBuckets(Array.from({ length: 100 }, (_, i) => `b-${batch}-${i}`));

    const replicas: Awaited<ReturnType<typeof p.spawn>>[] = [];
    for (let i = 0; i < 3; i++)
      replicas.push(await p.spawn(["controller"], { DV_CONTROLLER_CONCURRENCY: "16" }));
    const leases = new LeaseStore(p.t.db);
    await eventually(
      async () => {
        // Every shard held, by three replicas: while they rebalance, a shard given back is free
        // until the next round of another replica takes it.
        const live = (await leases.list()).filter((l) => l.live);
        const holders = new Set(live.map((l) => l.holder));
        return holders.size === 3 && live.length === FAST_CONTROLLER.shards ? holders : undefined;
      },
      20_000,
      "the shards to spread over three replicas",
    );

    await eventually(
      async () => ((await readyCount()) >= RESOURCES * 0.2 ? true : undefined),
      120_000,
      "a fifth of the resources ready",
    );
    const victim = replicas[0];
    if (!victim) throw new Error("no replica");
    const liveBefore = (await leases.list()).filter((l) => l.live).length;
    victim.child.kill("SIGKILL");
    const killedAt = Date.now();
    await victim.exited;
    // Its shards move to the survivors within the lease duration (plus a retry round).
    const movedAfterMs = await eventually(
      async () => {
        const live = (await leases.list()).filter((l) => l.live);
        const holders = new Set(live.map((l) => l.holder));
        return live.length === FAST_CONTROLLER.shards && holders.size === 2
          ? Date.now() - killedAt
          : undefined;
      },
      20_000,
      "the victim's shards to move",
    );
    expect(liveBefore).toBe(FAST_CONTROLLER.shards);
    expect(movedAfterMs).toBeLessThanOrEqual(
      FAST_CONTROLLER.leaseTtlMs + 4 * FAST_CONTROLLER.leaseRetryMs + 1_000,
    );

    await eventually(
      async () => ((await readyCount()) === RESOURCES ? true : undefined),
      240_000,
      "every resource to be ready",
    );
    const [tasks] = await p.t.admin.query<{ succeeded: number; total: number }>(
      "SELECT count(*) FILTER (WHERE state = 'succeeded')::int AS succeeded, count(*)::int AS total FROM task.tasks",
    );
    expect(tasks).toEqual({ succeeded: RESOURCES, total: RESOURCES });
    const [effects] = await p.t.admin.query<{ n: number; resources: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS resources FROM simulator.effects WHERE operation = 'provision'",
    );
    expect(effects).toEqual({ n: RESOURCES, resources: RESOURCES });
    expect(await fencedWrites(p.t.admin)).toBeGreaterThanOrEqual(RESOURCES);
    expect(await staleWrites(p.t.admin)).toEqual([]);
  }, 600_000);
});
