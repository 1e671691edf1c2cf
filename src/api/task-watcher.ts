import { TASK_CHANNEL } from "../contexts/task/index.js";
import type { Database, Unlisten } from "../db/index.js";
import type { Logger } from "../observability/index.js";

/**
 * Wakes up task followers (the SSE stream) when a task changes: one `LISTEN dv_task` per process,
 * fanned out by task id. A follower also wakes on a timeout, so a lost notification only delays.
 */
export class TaskWatcher {
  readonly #db: Database;
  readonly #log: Logger;
  readonly #waiters = new Map<string, Set<() => void>>();
  #unlisten: Unlisten | undefined;

  constructor(db: Database, log: Logger) {
    this.#db = db;
    this.#log = log;
  }

  async start(): Promise<void> {
    try {
      // One notification per statement names every task it changed, comma-separated.
      this.#unlisten = await this.#db.listen(TASK_CHANNEL, (payload) => {
        for (const taskId of payload.split(","))
          for (const wake of this.#waiters.get(taskId) ?? []) wake();
      });
    } catch (err) {
      // A replica refuses LISTEN; followers then wake on their timeout alone.
      this.#log.warn({ err }, "cannot follow task changes; task streams poll instead");
      return;
    }
    this.#log.debug("following task changes");
  }

  /** Resolves when task `id` changes, after `timeoutMs`, or when `signal` aborts. */
  wait(id: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      let set = this.#waiters.get(id);
      if (!set) {
        set = new Set();
        this.#waiters.set(id, set);
      }
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener("abort", done, { once: true });
      waiters.add(done);
    });
  }

  async stop(): Promise<void> {
    for (const waiters of this.#waiters.values()) for (const wake of waiters) wake();
    await this.#unlisten?.();
  }
}
