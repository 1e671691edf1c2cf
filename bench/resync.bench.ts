// The scale of the engine: 100,000 resources under one `dv controller` (from dist/). One bucket
// goes the whole way (reserved, created by the Objekt worker, Ready); its rows — the resource and
// its capacity reservation, as the platform wrote them — are cloned 99,999 times in SQL, and one in
// a thousand is made to drift (Ready turned False). Then a fresh controller takes every shard and
// resyncs them: it asks PostgreSQL which resources need a pass (the drifted ones) and confirms the
// converged rest in bulk. How long that takes, the SQL per resource, the memory it holds, and how
// soon a change a tenant makes as it starts is picked up (the fresh lane) and becomes Ready.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiFacade } from "../src/api/index.js";
import { newId } from "../src/kernel/index.js";
import { eventually } from "../test/support/backbone.js";
import type { TestDatabase } from "../test/support/database.js";
import type { TestNats } from "../test/support/nats.js";
import { databaseUrl } from "../test/support/template.js";
import {
  BENCH_PLATFORM,
  type DvChild,
  PROFILES,
  startDv,
  type Stage,
  startStage,
} from "./support/dv.js";
import { RssSampler } from "./support/processes.js";
import { profileHotspots } from "./support/profiles.js";
import { hotspots, report } from "./support/report.js";
import { QUICK, size } from "./support/scale.js";
import { resetStatements, statementsRun, topStatements } from "./support/statements.js";

const RESOURCES = size(100_000, 500);
/** Resources that drifted while no controller ran (Ready turned False): the resync must find them. */
const DRIFTED = Math.max(1, RESOURCES / 1_000);
/** The controller's default shard count. */
const SHARDS = 32;

let stage: Stage;
let db: TestDatabase;
let nats: TestNats;
let processes: DvChild[];
beforeAll(async () => {
  stage = await startStage();
  ({ db, nats, processes } = stage);
});
afterAll(async () => stage?.close());

const operator = {
  principal: { subject: "bench", role: "operator" as const },
  correlationId: "bench",
};

/** The sum of a metric's series on the controller's /metrics. */
async function metric(controller: DvChild, name: string, result?: string): Promise<number> {
  const text = await (await fetch(`${controller.url}/metrics`)).text();
  let total = 0;
  for (const line of text.split("\n"))
    if (
      (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) &&
      (result === undefined || line.includes(`result="${result}"`))
    )
      total += Number(line.split(" ").at(-1));
  return total;
}

/**
 * Resources the controller's resync looked at (queued or confirmed converged). Read at most ten
 * times a second: a scrape of /metrics asks PostgreSQL for the database's size.
 */
const resynced = async (controller: DvChild): Promise<number> => {
  await new Promise((r) => setTimeout(r, 100));
  return metric(controller, "dataverket_resync_resources_total");
};

describe("resync", () => {
  it(`${RESOURCES} resources under one controller`, async () => {
    const env = {
      DATABASE_URL: databaseUrl(db.name),
      NATS_URL: nats.url,
      DV_PLATFORM_CONFIG_DIR: BENCH_PLATFORM,
      DV_SIM_LATENCY_MS: "0",
      // Only the resync of the shards taken at start is measured, not a periodic one.
      DV_RESYNC_MS: "3600000",
      DV_CONTROLLER_SHARDS: String(SHARDS),
    };
    const first = await startDv("controller-seed", ["controller"], env);
    const worker = await startDv("worker-objekt", ["worker", "--service", "objekt"], env);
    processes.push(first, worker);
    await eventually(
      async () => {
        const [row] = await db.admin.query<{ n: string }>(
          "/* bench */ SELECT count(*) AS n FROM inventory.datacenters",
        );
        return Number(row?.n) > 0 ? true : undefined;
      },
      60_000,
      "the platform configuration to be applied",
    );
    const facade = new ApiFacade({ db: db.db, newId, now: () => new Date() });
    const tenant = await facade.createTenant(operator, { name: "scale" });
    const project = await facade.createProject(operator, tenant.id, { name: "p" });
    const environment = await facade.createEnvironment(operator, tenant.id, project.id, {
      name: "e",
      datacenter: "dc1",
    });
    const path = { tenant: tenant.id, project: project.id, environment: environment.id };
    const { resource: template, task } = await facade.createResource(operator, path, "bucket", {
      name: "b-0",
      spec: { quotaGiB: 1, versioning: false },
    });
    await eventually(
      async () => {
        const [row] = await db.admin.query<{ state: string }>(
          "/* bench */ SELECT state FROM task.tasks WHERE id = $1",
          [task.id],
        );
        return row?.state === "succeeded" ? true : undefined;
      },
      60_000,
      "the template bucket to be Ready",
    );
    await first.stop();

    // The clones: the resource row and its reservation, as the platform wrote them.
    const seedStarted = performance.now();
    await db.admin.query(
      `INSERT INTO inventory.resources (id, kind, tenant_id, project_id, environment_id, datacenter_id,
              name, labels, spec, status, generation, observed_generation, version, created_at, updated_at)
       SELECT gen_random_uuid(), kind, tenant_id, project_id, environment_id, datacenter_id,
              'b-' || g, labels, spec, status, generation, observed_generation, version, created_at, updated_at
         FROM inventory.resources, generate_series(1, $2::int - 1) AS g
        WHERE id = $1`,
      [template.id, RESOURCES],
    );
    // The reservations without the per-row trigger that adds each to the datacenter's used
    // capacity at commit (100,000 updates of one row took 3 minutes), then their sum at once.
    if (!/^[0-9a-f-]{36}$/.test(template.id)) throw new Error(`not a uuid: ${template.id}`);
    await db.admin.query(
      `BEGIN;
       SET LOCAL session_replication_role = replica;
       INSERT INTO inventory.capacity_reservations (owner_kind, owner_id, datacenter_id, resource, amount)
       SELECT 'bucket', r.id, c.datacenter_id, c.resource, c.amount
         FROM inventory.resources r, inventory.capacity_reservations c
        WHERE c.owner_id = '${template.id}' AND r.id <> '${template.id}';
       UPDATE inventory.capacity k SET used = k.used + c.amount * (${RESOURCES} - 1)
         FROM inventory.capacity_reservations c
        WHERE c.owner_id = '${template.id}' AND k.datacenter_id = c.datacenter_id AND k.resource = c.resource;
       COMMIT;`,
    );
    await db.admin.query("VACUUM ANALYZE inventory.resources");
    await db.admin.query("VACUUM ANALYZE inventory.capacity_reservations");
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const [count] = await db.admin.query<{ n: string }>(
      "/* bench */ SELECT count(*) AS n FROM inventory.resources",
    );
    expect(Number(count?.n)).toBe(RESOURCES);
    const [held] = await db.admin.query<{ used: string; reserved: string }>(
      `/* bench */ SELECT k.used, (SELECT sum(amount) FROM inventory.capacity_reservations) AS reserved
         FROM inventory.capacity k WHERE k.resource = 'objekt.storage_bytes' AND k.datacenter_id = 'dc1'`,
    );
    // The datacenter's used capacity is what the reservations hold, as the trigger keeps it.
    expect(Number(held?.used)).toBe(Number(held?.reserved));

    // A few resources drifted while no controller ran: Ready turned False under them (as a lost
    // write would leave them). The resync must find exactly these and pass over them; the rest are
    // converged and confirmed in bulk.
    await db.admin.query(
      `UPDATE inventory.resources
          SET status = jsonb_set(status, '{conditions}',
                '[{"type":"Ready","status":"False","reason":"Provisioning","message":"drifted","lastTransitionTime":"2026-01-01T00:00:00Z","observedGeneration":1}]')
        WHERE id IN (SELECT id FROM inventory.resources WHERE id <> $1 ORDER BY id LIMIT $2)`,
      [template.id, DRIFTED],
    );

    await resetStatements(db.admin);
    const started = performance.now();
    const controller = await startDv("controller", ["controller"], env);
    processes.push(controller);
    const ready = performance.now();
    const rss = new RssSampler({ controller: controller.pid });

    // A tenant's change as the controller starts, while it takes its shards and resyncs them:
    // when its pass comes, and when it is Ready. (Before its shard is held nobody may reconcile
    // it; the resync of that shard picks it up.)
    const current = await facade.getResource(operator, path, "bucket", "b-0");
    const changedAt = performance.now();
    const change = await facade.updateResource(operator, path, "bucket", "b-0", current.version, {
      spec: { quotaGiB: 1, versioning: true },
    });
    let pickedUp = Number.NaN;
    await eventually(
      async () => {
        const [row] = await db.admin.query<{ generation: string | null; state: string }>(
          `/* bench */ SELECT status->'steps'->'main'->>'generation' AS generation, t.state
             FROM inventory.resources r JOIN task.tasks t ON t.id = $2 WHERE r.id = $1`,
          [template.id, change.task.id],
        );
        if (Number.isNaN(pickedUp) && Number(row?.generation) === change.resource.generation)
          pickedUp = performance.now() - changedAt;
        return row?.state === "succeeded" ? true : undefined;
      },
      600_000,
      "the change to be Ready",
    );
    const changeReady = performance.now() - changedAt;
    // The resync is over when every shard is held, every resource of them was looked at (queued
    // for a pass or confirmed converged) and the drifted ones are Ready again.
    const resyncedAt = await eventually(
      async () => {
        if ((await metric(controller, "dataverket_leases_held")) !== SHARDS) return undefined;
        if ((await resynced(controller)) < RESOURCES) return undefined;
        const [row] = await db.admin.query<{ n: string }>(
          `/* bench */ SELECT count(*) AS n FROM inventory.resources
            WHERE NOT status @> '{"conditions":[{"type":"Ready","status":"True"}]}'`,
        );
        return Number(row?.n) === 0 ? performance.now() : undefined;
      },
      1_800_000,
      `${RESOURCES} resources resynced`,
    );
    const resyncSeconds = (resyncedAt - ready) / 1000;
    const converged = await metric(controller, "dataverket_resync_resources_total", "converged");
    const passesDone = await metric(controller, "dataverket_reconcile_total");
    const statements = (await statementsRun(db.admin)) / RESOURCES;
    // Steady: what it holds once the resync is over.
    await new Promise((r) => setTimeout(r, 5_000));
    const steady = rss.latest().controller ?? Number.NaN;
    const peak = rss.peaks().controller ?? Number.NaN;
    rss.stop();
    hotspots(
      "resync",
      `${RESOURCES} resources: SQL by execution time (pg_stat_statements)`,
      await topStatements(db.admin, 8, "resync"),
    );

    report("resync", {
      [`seed ${RESOURCES} resources (SQL clone of a Ready one)`]: [seedSeconds, "s"],
      "controller start to /readyz": [ready - started, "ms"],
      [`full resync of ${RESOURCES} resources`]: [
        resyncSeconds,
        "s",
        QUICK ? undefined : { below: 10 },
      ],
      "resync rate": [RESOURCES / resyncSeconds, "resources/s"],
      "confirmed converged without a pass": [converged, "resources"],
      [`passes (the ${DRIFTED} drifted, the change, what they touched)`]: [passesDone, "passes"],
      "SQL statements per resource": [statements, "statements", QUICK ? undefined : { below: 0.1 }],
      "controller RSS after the resync": [steady, "MiB", QUICK ? undefined : { below: 300 }],
      "controller RSS, peak": [peak, "MiB"],
      "a change during the resync: its pass": [pickedUp, "ms", QUICK ? undefined : { below: 1000 }],
      "a change during the resync: Ready": [changeReady, "ms"],
    });
    for (const p of processes) await p.stop();
    profileHotspots("resync", "controller", `${PROFILES}/controller`);
  });
});
