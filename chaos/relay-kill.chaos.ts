// Scenario relay-kill: the outbox relay killed between the publish and the mark, 20 times (4 in
// --quick). The relay claims rows, publishes them, waits for JetStream's acks, then marks the
// rows it sent published. A test-only trigger makes that UPDATE sleep when the scenario says so; the
// scenario finds the sleeping session in pg_stat_activity (so the publish has happened and the
// mark has not), and SIGKILLs the process it belongs to (the controller or the worker: both relay)
// while tenants keep creating networks. The killed transaction rolls back; the rows it had sent
// are published again by the next relay. Checked: every acknowledged network provisioned exactly
// once, no command applied twice, every task `succeeded`, the outbox drained.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/support/backbone.js";
import type { DvProcess } from "../test/support/process.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { networkWorkload } from "./support/workload.js";
import { record, size } from "./support/report.js";

const KILLS = size(20, 4);
/** How the relay's statement that marks a published batch begins (OutboxStore.relay). */
const MARK = 'UPDATE "runtime"."outbox" SET published_at = clock_timestamp()';

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ relay: false, workerSettings: { ackWaitMs: 3_000, maxAttempts: 10 } });
  await p.t.admin.query(`
    CREATE TABLE public.chaos_control (id int PRIMARY KEY, sleep_marks boolean NOT NULL);
    INSERT INTO public.chaos_control VALUES (1, false);
    CREATE FUNCTION public.chaos_sleep_mark() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      -- Only the relay's mark of what it published (not a re-send, a postponement or an insert).
      IF current_query() NOT ILIKE '${MARK}%' THEN
        RETURN NULL;
      END IF;
      -- Sleeps while the scenario says so (30 s at most); each check sees the latest setting.
      FOR i IN 1..600 LOOP
        EXIT WHEN NOT (SELECT sleep_marks FROM public.chaos_control WHERE id = 1);
        PERFORM pg_sleep(0.05);
      END LOOP;
      RETURN NULL;
    END $$;
    CREATE TRIGGER chaos_sleep_mark BEFORE UPDATE ON runtime.outbox
      FOR EACH STATEMENT EXECUTE FUNCTION public.chaos_sleep_mark();`);
});
afterAll(async () => p.close());

const sleepMarks = (on: boolean) =>
  p.t.admin.query("UPDATE public.chaos_control SET sleep_marks = $1", [on]);

describe("the relay killed between publish and mark", () => {
  it(`${KILLS} times: nothing lost, the re-published duplicates absorbed`, async () => {
    const processes: Record<string, () => Promise<DvProcess>> = {
      "dv-controller": () => p.spawn(["controller"]),
      "dv-worker-nett": () => p.spawn(["worker", "--service", "nett"]),
    };
    const running: Record<string, DvProcess> = {};
    for (const [name, start] of Object.entries(processes)) running[name] = await start();

    const networks = networkWorkload(p);
    const create = (name: string) => networks.create(name);
    const killed: Record<string, number> = {};
    let republished = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      for (let i = 0; i < 5; i++) await create(`relay-${kill}-${i}`);
      await sleepMarks(true);
      // A relay that has published a batch and sleeps in its mark of it; of the controller's
      // and the worker's, whichever sleep within a moment, one at random.
      const sleepers = async () =>
        p.t.admin.query<{ pid: number; application_name: string }>(
          `SELECT pid, application_name FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event = 'PgSleep'
              AND query ILIKE '${MARK}%'`,
        );
      await eventually(
        async () => ((await sleepers()).length > 0 ? true : undefined),
        30_000,
        "a relay to sleep in its mark",
      );
      await new Promise((r) => setTimeout(r, 300));
      const asleep = await sleepers();
      const sleeper = asleep[Math.floor(Math.random() * asleep.length)];
      if (!sleeper) throw new Error("the sleeping relay woke up by itself");
      // The rows of its batch: locked by its transaction, already in JetStream.
      const [locked] = await p.t.admin.query<{ n: number }>(
        `SELECT (SELECT count(*) FROM runtime.outbox)::int - (SELECT count(*) FROM
           (SELECT id FROM runtime.outbox FOR UPDATE SKIP LOCKED) unlocked)::int AS n`,
      );
      republished += locked?.n ?? 0;
      const name = sleeper.application_name;
      const victim = running[name];
      const start = processes[name];
      if (!victim || !start) throw new Error(`a relay of an unexpected process: ${name}`);
      victim.child.kill("SIGKILL");
      await victim.exited;
      killed[name] = (killed[name] ?? 0) + 1;
      await sleepMarks(false);
      running[name] = await start();
    }
    const healedAt = Date.now();

    const settled = await networks.settle(180_000);
    await eventually(
      async () => ((await p.services.outbox.backlog()).count === 0 ? true : undefined),
      30_000,
      "the outbox to drain",
    );
    record({
      scenario: "relay-kill",
      faults: KILLS,
      operations: networks.requested.length,
      lost: settled.lost,
      duplicated: settled.duplicated,
      violations: settled.violations,
      recoveryMs: Date.now() - healedAt,
      figures: {
        killed_controller: killed["dv-controller"] ?? 0,
        killed_worker: killed["dv-worker-nett"] ?? 0,
        rows_published_twice: republished,
      },
    });
    settled.assert();
    // The kills did land between a publish and its mark: those rows were sent twice.
    expect(republished).toBeGreaterThanOrEqual(KILLS);
  });
});
