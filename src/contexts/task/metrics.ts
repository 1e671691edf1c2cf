// The task context's gauges, read from PostgreSQL at scrape time: tasks by state, and how long
// the oldest unfinished one has waited.
import { Gauge } from "prom-client";
import { metricOnce, type Registry } from "../../observability/index.js";
import type { TaskStore } from "./store.js";

/**
 * `dataverket_tasks{state}` (how many tasks are in each state) and
 * `dataverket_task_oldest_unfinished_seconds` (work that is not moving), read at scrape time.
 */
export function registerTaskMetrics(
  tasks: Pick<TaskStore, "countByState" | "oldestUnfinishedSeconds">,
  metrics: Registry,
): void {
  metricOnce(
    metrics,
    "dataverket_tasks",
    () =>
      new Gauge({
        name: "dataverket_tasks",
        help: "Tasks by state",
        labelNames: ["state"] as const,
        registers: [metrics],
        async collect() {
          this.reset();
          for (const row of await tasks.countByState()) this.set({ state: row.state }, row.count);
        },
      }),
  );
  metricOnce(
    metrics,
    "dataverket_task_oldest_unfinished_seconds",
    () =>
      new Gauge({
        name: "dataverket_task_oldest_unfinished_seconds",
        help: "Age of the oldest task that has not ended (0 when none is open)",
        registers: [metrics],
        async collect() {
          this.set(await tasks.oldestUnfinishedSeconds());
        },
      }),
  );
}
