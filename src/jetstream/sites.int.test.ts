// Two datacenters, each with its own NATS (JetStream domain) and nett workers, linked as a leaf
// node; the controllers and PostgreSQL in dc1 (ADR 0007). Networks are created in both sites;
// then the site link is cut for 30 s while more are created. dc1 keeps converging on its own; the
// tasks of dc2 say they wait for dc2; after the heal everything converges — no command lost, none
// applied twice, every one applied by its own site's workers.
//
// The controller's resync and re-dispatch deadline are ten minutes here, far beyond every wait
// below: whatever happens in time happens because something woke the controller — the dc2
// worker's outcome (LISTEN dv_site_event), the relay's first refused publish (dv_intent) — never
// because a periodic pass came by. The times it took are printed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type Site, type Sites, startSites } from "../../test/support/sites.js";
import type { ResourcePath } from "../api/index.js";

const BEFORE = 8; // networks per site before the cut
const DURING = 12; // networks per site created while the link is cut
const CUT_MS = 30_000; // the link stays cut at least this long, and until everything below was seen

const operator = {
  principal: { subject: "test", role: "operator" as const },
  correlationId: "test",
};

let s: Sites;
const paths = {} as Record<Site, ResourcePath>;
const workers = {} as Record<Site, { port: number }>;

/** No periodic pass within any wait of this test (see the top). */
const NO_RESYNC = { DV_RESYNC_MS: "600000", DV_REDISPATCH_AFTER_MS: "600000" };

beforeAll(async () => {
  s = await startSites();
  await s.spawn("dc1", ["controller"], NO_RESYNC);
  workers.dc1 = await s.spawn("dc1", ["worker", "--service", "nett"]);
  workers.dc2 = await s.spawn("dc2", ["worker", "--service", "nett"]);
  const tenant = await s.facade.createTenant(operator, { name: "sites" });
  const project = await s.facade.createProject(operator, tenant.id, { name: "p" });
  for (const site of ["dc1", "dc2"] as const) {
    const env = await s.facade.createEnvironment(operator, tenant.id, project.id, {
      name: site,
      datacenter: site,
    });
    paths[site] = { tenant: tenant.id, project: project.id, environment: env.id };
  }
}, 120_000);

afterAll(async () => s?.close());

async function create(site: Site, name: string): Promise<string> {
  const { task } = await s.facade.createResource(operator, paths[site], "network", {
    name,
    spec: { prefixLength: 28 },
  });
  return task.id;
}

async function states(ids: readonly string[]) {
  return s.t.admin.query<{ id: string; state: string; message: string }>(
    "SELECT id, state, progress_message AS message FROM task.tasks WHERE id = ANY($1::uuid[])",
    [ids],
  );
}

async function allSucceeded(ids: readonly string[], timeoutMs: number, what: string) {
  await eventually(
    async () => ((await states(ids)).every((t) => t.state === "succeeded") ? true : undefined),
    timeoutMs,
    what,
  );
}

/** Seconds from each task's creation to its end, the longest. */
async function slowest(ids: readonly string[]): Promise<number> {
  const [row] = await s.t.admin.query<{ seconds: number }>(
    `SELECT max(extract(epoch FROM finished_at - created_at))::float8 AS seconds
       FROM task.tasks WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return Number(row?.seconds);
}

async function commandsDone(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith('dataverket_worker_commands_total{service="nett",outcome="done"}'));
  return Number(line?.slice(line.lastIndexOf(" ") + 1) ?? 0);
}

describe("two datacenters with a site link", () => {
  it("keep local work going through a 30 s partition, and converge after it, exactly once", async () => {
    const tasks: Record<Site, string[]> = { dc1: [], dc2: [] };
    for (let i = 0; i < BEFORE; i++)
      for (const site of ["dc1", "dc2"] as const) tasks[site].push(await create(site, `a${i}`));
    await allSucceeded([...tasks.dc1, ...tasks.dc2], 60_000, "both sites' networks to be Ready");
    const linked = { dc1: await slowest(tasks.dc1), dc2: await slowest(tasks.dc2) };

    await s.link.cut();
    const cutAt = Date.now();
    // The first network of dc2 after the cut says what it waits for as soon as the relay's
    // first publish of its command is refused.
    const first = await create("dc2", "first-after-cut");
    const firstAt = Date.now();
    await eventually(
      async () => {
        const [row] = await states([first]);
        return row?.state === "queued" && row.message.startsWith("waiting: ") ? true : undefined;
      },
      60_000,
      "the first dc2 network after the cut to report that it waits",
    );
    const undeliveredAfter = (Date.now() - firstAt) / 1000;
    const during: Record<Site, string[]> = { dc1: [], dc2: [] };
    for (let i = 0; i < DURING; i++) {
      for (const site of ["dc1", "dc2"] as const) during[site].push(await create(site, `b${i}`));
      await new Promise((r) => setTimeout(r, 500));
    }
    // dc1 needs nothing from dc2: its networks are Ready while the link is down.
    // The link is still cut while these are checked: it is healed only below, whatever the time.
    await allSucceeded(during.dc1, 60_000, "dc1's networks, during the cut");
    // dc2's tasks say what they wait for instead of failing or waiting silently.
    const waiting = await eventually(
      async () => {
        const rows = await states(during.dc2);
        return rows.every((t) => t.state === "queued" && t.message.startsWith("waiting: "))
          ? rows
          : undefined;
      },
      60_000,
      "dc2's tasks to report that they wait for dc2",
    ).catch(async (err: unknown) => {
      const outbox = await s.t.admin.query(
        "SELECT subject, attempts, last_error, origin, envelope->>'datacenter_id' AS dc FROM runtime.outbox",
      );
      throw new Error(
        `${String(err)}\ntasks: ${JSON.stringify(await states(during.dc2))}\noutbox: ${JSON.stringify(outbox)}`,
      );
    });
    expect(waiting[0]?.message).toMatch(
      /^waiting: datacenter dc2 is not reachable over the site link \(.+\); the command waits here and is sent once it is$/,
    );
    const [resource] = await s.t.admin.query<{ conditions: { reason: string; type: string }[] }>(
      `SELECT status->'conditions' AS conditions FROM inventory.resources
        WHERE environment_id = $1 AND name = 'b0'`,
      [paths.dc2.environment],
    );
    expect(resource?.conditions).toContainEqual(
      expect.objectContaining({ type: "Reconciling", reason: "Undelivered" }),
    );
    await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (Date.now() - cutAt))));

    await s.link.heal();
    const healedAt = Date.now();
    const all = [...tasks.dc1, ...tasks.dc2, first, ...during.dc1, ...during.dc2];
    await allSucceeded(all, 90_000, "every network of both sites, after the heal");
    console.log(
      [
        `linked: every network Ready within ${linked.dc1.toFixed(2)} s of its request in dc1, ${linked.dc2.toFixed(2)} s in dc2`,
        `cut: a dc2 network reported Undelivered ${undeliveredAfter.toFixed(2)} s after its request`,
        `healed after ${((healedAt - cutAt) / 1000).toFixed(1)} s: ${during.dc2.length + 1} waiting dc2 networks Ready ${((Date.now() - healedAt) / 1000).toFixed(1)} s after the heal`,
      ].join("\n"),
    );

    // Exactly once: one provisioning per network, none lost, none twice.
    const effects = await s.t.admin.query<{ n: number; resources: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT resource_id)::int AS resources FROM simulator.effects WHERE operation = 'provision'",
    );
    expect(effects).toEqual([{ n: all.length, resources: all.length }]);
    // Each site's networks were applied by that site's workers, and each worker did work.
    const misplaced = await s.t.admin.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM simulator.effects e
         JOIN inventory.resources r ON r.id = e.resource_id
        WHERE e.applied_in IS DISTINCT FROM r.datacenter_id`,
    );
    expect(misplaced).toEqual([{ n: 0 }]);
    expect(await commandsDone(workers.dc1.port)).toBeGreaterThanOrEqual(BEFORE + DURING);
    expect(await commandsDone(workers.dc2.port)).toBeGreaterThanOrEqual(BEFORE + DURING);
  }, 240_000);
});
