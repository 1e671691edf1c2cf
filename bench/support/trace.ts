// Where a network's time goes between its `202` and Ready, step by step (`DV_BENCH_TRACE=1`):
// triggers stamp each task event when its transaction began (`now()`) and when the row was
// written (`clock_timestamp()`), and each command (not the events that also name the task) when
// the relay marked it published. The triggers cost a statement each, so a traced run is for
// reading the steps, not the totals.
import type { Database } from "../../src/db/index.js";

/** Installs the triggers; events written from now on are traced. */
export async function startTrace(admin: Database): Promise<void> {
  for (const statement of [
    `CREATE TABLE IF NOT EXISTS public.bench_trace (
       task_id uuid NOT NULL, step text NOT NULL,
       begun timestamptz NOT NULL DEFAULT now(), written timestamptz NOT NULL DEFAULT clock_timestamp())`,
    `CREATE OR REPLACE FUNCTION public.bench_trace_event() RETURNS trigger
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
     BEGIN INSERT INTO public.bench_trace (task_id, step) VALUES (NEW.task_id, NEW.verb); RETURN NULL; END $$`,
    `CREATE OR REPLACE FUNCTION public.bench_trace_publish() RETURNS trigger
       LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
     BEGIN
       INSERT INTO public.bench_trace (task_id, step)
       VALUES ((NEW.envelope->'data'->>'task_id')::uuid, 'published');
       RETURN NULL;
     END $$`,
    `CREATE OR REPLACE TRIGGER bench_trace AFTER INSERT ON task.task_events
       FOR EACH ROW EXECUTE FUNCTION public.bench_trace_event()`,
    `CREATE OR REPLACE TRIGGER bench_trace AFTER UPDATE OF published_at ON runtime.outbox
       FOR EACH ROW WHEN (NEW.published_at IS NOT NULL AND OLD.published_at IS NULL
                          AND NEW.subject LIKE 'dv.%.cmd.%' AND NEW.envelope->'data' ? 'task_id')
       EXECUTE FUNCTION public.bench_trace_publish()`,
  ]) {
    await admin.query(statement);
  }
}

/** The steps, in order: from one stamp to the next, of each task traced. */
const STEPS: readonly { step: string; from: string; to: string }[] = [
  { step: "API's write → controller's pass begins", from: "created.written", to: "queued.begun" },
  { step: "pass begins → its queued event", from: "queued.begun", to: "queued.written" },
  {
    step: "queued event → the command published (pass commits, relay)",
    from: "queued.written",
    to: "published.written",
  },
  {
    step: "published → worker's transaction begins (JetStream, the worker)",
    from: "published.written",
    to: "started.begun",
  },
  {
    step: "worker's transaction → its started event",
    from: "started.begun",
    to: "started.written",
  },
  {
    step: "started event → controller's second pass begins",
    from: "started.written",
    to: "succeeded.begun",
  },
  {
    step: "second pass begins → its succeeded event",
    from: "succeeded.begun",
    to: "succeeded.written",
  },
];

/** Median and p99 of each step, over the tasks `ids`, in milliseconds. */
export async function traceSteps(
  admin: Database,
  ids: readonly string[],
): Promise<{ step: string; p50: number; p99: number }[]> {
  const stamp = (ref: string): string => {
    const [step, column] = ref.split(".") as [string, "begun" | "written"];
    return `(SELECT min(${column}) FROM public.bench_trace b WHERE b.task_id = t.id AND b.step = '${step}')`;
  };
  const columns = STEPS.map(
    ({ from, to }, i) =>
      `percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM ${stamp(to)} - ${stamp(from)}) * 1000) AS p50_${i},
       percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM ${stamp(to)} - ${stamp(from)}) * 1000) AS p99_${i}`,
  ).join(",\n");
  const [row] = await admin.query<Record<string, number>>(
    `/* bench */ SELECT ${columns} FROM unnest($1::uuid[]) AS t(id)`,
    [ids],
  );
  return STEPS.map(({ step }, i) => ({
    step,
    p50: Math.round(Number(row?.[`p50_${i}`] ?? 0) * 10) / 10,
    p99: Math.round(Number(row?.[`p99_${i}`] ?? 0) * 10) / 10,
  }));
}
