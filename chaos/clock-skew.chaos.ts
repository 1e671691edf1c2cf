// Scenario clock-skew: three controller replicas, one with the right time, one whose clock is
// 5 minutes ahead and one 5 minutes behind (libfaketime, LD_PRELOAD), share the shards while
// tenants create buckets; every round one replica is killed (SIGKILL) and started again, so its
// shards move to replicas with other clocks. Leases are timed by PostgreSQL's clock, so the skew
// must not matter. Checked, by test-only triggers: no shard was granted while another replica's
// lease on it was still live (double ownership), no write was accepted under a fencing token a
// later grant had replaced, every bucket provisioned once; and the skew was real (the replicas'
// log timestamps).
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/support/backbone.js";
import { installFenceAudit, staleWrites } from "../test/support/fence-audit.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import type { DvProcess } from "../test/support/process.js";
import { provisionVerdict, twiceApplied } from "./support/ledger.js";
import { record, size } from "./support/report.js";

const ROUNDS = size(6, 2);
const PER_ROUND = 100;
const SKEWS = { exact: "+0", ahead: "+5m", behind: "-5m" } as const;
type Skew = keyof typeof SKEWS;

let p: Plane;
let faketime: string;
beforeAll(async () => {
  faketime = execFileSync("bash", ["hack/faketime.sh", "lib"], { encoding: "utf8" }).trim();
  p = await startPlane({ workers: ["objekt"], workerSettings: { concurrency: 16 } });
  await installFenceAudit(p.t.admin);
  // A grant that takes a shard from another holder whose lease had not expired yet, by the
  // database's clock: two owners at once.
  await p.t.admin.query(`
    CREATE TABLE public.double_grants (shard int, old_holder text, old_expires_at timestamptz, new_holder text, at timestamptz);
    CREATE FUNCTION public.audit_double_grant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      IF OLD.holder IS NOT NULL AND OLD.holder <> NEW.holder AND OLD.expires_at > clock_timestamp() THEN
        INSERT INTO public.double_grants VALUES (NEW.shard, OLD.holder, OLD.expires_at, NEW.holder, clock_timestamp());
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER audit_double_grant AFTER UPDATE OF fencing_token ON runtime.leases FOR EACH ROW
      WHEN (NEW.fencing_token <> OLD.fencing_token) EXECUTE FUNCTION public.audit_double_grant();`);
});
afterAll(async () => p.close());

/** How far the clock of a process's log lines is from ours, in minutes. */
function skewMinutes(proc: DvProcess): number | undefined {
  const line = proc
    .stdout()
    .split("\n")
    .find((l) => l.startsWith("{") && l.includes('"time"'));
  if (!line) return undefined;
  const time = (JSON.parse(line) as { time: number | string }).time;
  return (new Date(time).getTime() - Date.now()) / 60_000;
}

describe("controllers with clocks 5 minutes apart", () => {
  it("never own a shard twice", async () => {
    const start = (skew: Skew) =>
      p.spawn(["controller"], {
        LD_PRELOAD: faketime,
        FAKETIME: SKEWS[skew],
        DV_LOG_LEVEL: "info",
      });
    const replicas: Record<Skew, DvProcess> = {
      exact: await start("exact"),
      ahead: await start("ahead"),
      behind: await start("behind"),
    };
    const measured = {
      ahead: skewMinutes(replicas.ahead),
      behind: skewMinutes(replicas.behind),
      exact: skewMinutes(replicas.exact),
    };

    const ids: string[] = [];
    let restarts = 0;
    let recoveryMs = 0;
    for (let round = 0; round < ROUNDS; round++) {
      ids.push(
        ...(await p.createBuckets(
          Array.from({ length: PER_ROUND }, (_, i) => `skew-${round}-${i}`),
        )),
      );
      // In the middle of the burst, one replica dies; its shards go to the other clocks.
      await new Promise((r) => setTimeout(r, 300));
      const victim = (["exact", "ahead", "behind"] as const)[round % 3] as Skew;
      replicas[victim].child.kill("SIGKILL");
      await replicas[victim].exited;
      const killedAt = Date.now();
      await eventually(
        async () => {
          const [row] = await p.t.admin.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM task.tasks WHERE state = 'succeeded'",
          );
          return row?.n === ids.length ? true : undefined;
        },
        120_000,
        `the ${ids.length} buckets so far to converge`,
      );
      recoveryMs = Math.max(recoveryMs, Date.now() - killedAt);
      replicas[victim] = await start(victim);
      restarts++;
    }

    const doubles = await p.t.admin.query("SELECT * FROM public.double_grants");
    const stale = await staleWrites(p.t.admin);
    const [grants] = await p.t.admin.query<{ n: number; holders: number }>(
      "SELECT count(*)::int AS n, count(DISTINCT holder)::int AS holders FROM public.grant_audit",
    );
    const verdict = await provisionVerdict(p.t.admin, ids, ids);
    const twice = await twiceApplied(p.t.admin);
    record({
      scenario: "clock-skew",
      faults: restarts,
      operations: ids.length,
      lost: verdict.lost.length,
      duplicated: verdict.duplicated.length + twice.length,
      violations: doubles.length + stale.length,
      recoveryMs,
      figures: {
        grants: grants?.n ?? 0,
        holders: grants?.holders ?? 0,
        skew_ahead_min: Math.round((measured.ahead ?? Number.NaN) * 10) / 10,
        skew_behind_min: Math.round((measured.behind ?? Number.NaN) * 10) / 10,
      },
    });
    // The clocks really were 5 minutes off (give or take the time the line took to be read).
    expect(measured.ahead).toBeGreaterThan(4.5);
    expect(measured.ahead).toBeLessThan(5.5);
    expect(measured.behind).toBeLessThan(-4.5);
    expect(measured.behind).toBeGreaterThan(-5.5);
    expect(Math.abs(measured.exact ?? 99)).toBeLessThan(0.5);
    expect(doubles).toEqual([]);
    expect(stale).toEqual([]);
    expect(verdict).toMatchObject({ lost: [], duplicated: [], valid: true });
    expect(twice).toEqual([]);
    // Shards did move between the replicas: grants to more holders than the three first ones.
    expect(grants?.holders).toBeGreaterThan(3);
  });
});
