// Scenario postgres-restart: the control plane (API, controller, nett worker: separate
// processes) on a PostgreSQL server of its own (hack/postgres.sh scratch-start), which is
// stopped the way a crash stops it (immediate shutdown: no checkpoint; crash recovery at the next
// start) and started again 3 s later, while 8 tenant clients create networks through the API.
// A client that gets no answer, or an error, retries with the same Idempotency-Key, as a client
// of this API should. Checked: every creation the API acknowledged (202) is still there and was
// provisioned exactly once; every task ended `succeeded` (none stuck); no network exists twice;
// and the processes reconnected by themselves (none exited). The clients create at most RATE
// networks a second between them, so that the run never asks for more than the test platform's
// pool holds (3,900 VLANs in dc1): unpaced, a faster control plane created 4,746 in a full run
// and the last 846 failed, rightly, as the pool was exhausted.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchKey } from "../bench/support/dv.js";
import { newId } from "../src/kernel/index.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import type { DvProcess } from "../test/support/process.js";
import { allEnd, provisionVerdict, twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const CLIENTS = 8;
const DURATION_MS = size(60_000, 20_000);
const DOWN_MS = 3_000;
/** Creations a second, all clients together: 2,400 in a full run, below the pool's 3,900. */
const RATE = 40;

const pg = (command: string) =>
  execFileSync("bash", ["hack/postgres.sh", command], { encoding: "utf8" }).trim();

let p: Plane;
beforeAll(async () => {
  pg("scratch-remove");
  pg("scratch-start");
  p = await startPlane({ server: pg("scratch-url"), relay: false });
});
afterAll(async () => {
  await p.close();
  pg("scratch-remove");
});

describe("PostgreSQL restarted under load", () => {
  it("loses no acknowledged write and leaves no task stuck", async () => {
    const key = await benchKey();
    const processes: DvProcess[] = [
      await p.spawn(["api"], { ...key.env, DV_API_RATE_LIMIT: "1000000" }),
      await p.spawn(["controller"]),
      await p.spawn(["worker", "--service", "nett"]),
    ];
    const api = processes[0] as DvProcess & { port: number };
    const token = await key.token("tenant-admin", p.path.tenant);
    const url = `http://127.0.0.1:${api.port}/api/v1/tenants/${p.path.tenant}/projects/${p.path.project}/environments/${p.path.environment}/networks`;

    const attempted: string[] = [];
    const acknowledged = new Map<string, { id: string; task: string }>();
    const failures = new Map<string, number>();
    const deadline = Date.now() + DURATION_MS;
    let restartedAt = 0;
    let firstAckAfterRestart = 0;
    const startedAt = Date.now();
    const client = async (n: number) => {
      for (let i = 0; Date.now() < deadline; i++) {
        // Client n's i-th creation is due at its place in an even schedule of RATE a second.
        const due = startedAt + ((i * CLIENTS + n) * 1000) / RATE;
        if (due > Date.now()) await new Promise((resolve) => setTimeout(resolve, due - Date.now()));
        if (Date.now() >= deadline) break;
        const name = `pg-${n}-${i}`;
        const idempotencyKey = newId();
        attempted.push(name);
        // Until it is acknowledged (or the run ends): the same request, the same key.
        while (Date.now() < deadline + 30_000) {
          const r = await fetch(url, {
            method: "POST",
            headers: {
              authorization: `Bearer ${token}`,
              "content-type": "application/json",
              "idempotency-key": idempotencyKey,
            },
            body: JSON.stringify({ name, spec: { prefixLength: 28 } }),
            signal: AbortSignal.timeout(10_000),
          }).catch(() => undefined);
          if (r?.status === 202) {
            const body = (await r.json()) as { id: string; resource: { id: string } };
            acknowledged.set(name, { id: body.resource.id, task: body.id });
            if (restartedAt && !firstAckAfterRestart) firstAckAfterRestart = Date.now();
            break;
          }
          await r?.body?.cancel();
          const status = String(r?.status ?? "no answer");
          failures.set(status, (failures.get(status) ?? 0) + 1);
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    };
    const load = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));
    await new Promise((r) => setTimeout(r, DURATION_MS / 3));
    const before = acknowledged.size;
    pg("scratch-crash");
    await new Promise((r) => setTimeout(r, DOWN_MS));
    pg("scratch-start");
    restartedAt = Date.now();
    await load;

    const acked = [...acknowledged.values()];
    const { states, tookMs } = await allEnd(
      p.services,
      acked.map((a) => a.task),
      180_000,
    );
    const stored = await p.t.admin.query<{ id: string; name: string }>(
      "SELECT id::text, name FROM inventory.resources WHERE kind = 'network'",
    );
    const storedIds = new Set(stored.map((r) => r.id));
    const lost = acked.filter((a) => !storedIds.has(a.id));
    const sameName = stored.length - new Set(stored.map((r) => r.name)).size;
    const verdict = await provisionVerdict(
      p.t.admin,
      stored.map((r) => r.id),
      acked.map((a) => a.id),
    );
    const twice = await twiceApplied(p.t.admin);
    const exited = processes.filter(
      (d) => d.child.exitCode !== null || d.child.signalCode !== null,
    );
    const notSucceeded = states.filter((s) => s !== "succeeded").length;
    record({
      scenario: "postgres-restart",
      faults: 1,
      operations: attempted.length,
      lost: lost.length + verdict.lost.length,
      duplicated: verdict.duplicated.length + twice.length + sameName,
      violations: notSucceeded + exited.length,
      recoveryMs: firstAckAfterRestart ? firstAckAfterRestart - restartedAt : undefined,
      figures: {
        acknowledged: acked.length,
        acknowledged_before_crash: before,
        retries: [...failures.values()].reduce((a, b) => a + b, 0),
        ...Object.fromEntries([...failures].map(([k, v]) => [`answered ${k}`, v])),
        "tasks ended after load (ms)": tookMs,
      },
    });
    // What became of the tasks that did not succeed, and their events.
    const unfinished = await p.t.admin.query(
      `SELECT t.state, t.reason, t.progress_message,
              (SELECT json_agg(json_build_object('verb', e.verb, 'actor', e.actor, 'message', e.message) ORDER BY e.seq)
                 FROM task.task_events e WHERE e.task_id = t.id) AS events
         FROM task.tasks t WHERE t.id = ANY($1) AND t.state <> 'succeeded'`,
      [acked.map((a) => a.task)],
    );
    expect(unfinished).toEqual([]);
    expect(lost).toEqual([]);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], valid: true });
    expect(twice).toEqual([]);
    expect(sameName).toBe(0);
    expect(states).toEqual(Array(acked.length).fill("succeeded"));
    expect(exited.map((d) => d.stderr().slice(-500))).toEqual([]);
    // The restart did hit the clients, and they got through afterwards.
    expect(failures.size).toBeGreaterThan(0);
    expect(firstAckAfterRestart).toBeGreaterThan(0);
  });
});
