import type { Logger } from "../observability/index.js";
import { StoppedError } from "./errors.js";

/** A resource to release when the process stops. */
export interface Stoppable {
  readonly name: string;
  stop(): Promise<void>;
}

/**
 * Stops what a process started, in reverse order of start, once. Each step is bounded by
 * `stepTimeoutMs` so one stuck resource cannot hold the others open.
 */
export class Lifecycle {
  readonly #log: Logger;
  readonly #steps: Stoppable[] = [];
  readonly #stepTimeoutMs: number;
  #stopping: Promise<void> | undefined;

  constructor(log: Logger, stepTimeoutMs = 10_000) {
    this.#log = log;
    this.#stepTimeoutMs = stepTimeoutMs;
  }

  /**
   * Registers a resource; it is stopped before everything registered earlier. A resource that
   * arrives after stopping began (a signal during startup) is stopped at once.
   */
  add(name: string, stop: () => Promise<void>): void {
    if (this.#stopping) {
      this.#stopping = this.#stopping.then(() => this.#stopStep({ name, stop }));
      return;
    }
    this.#steps.push({ name, stop });
  }

  /**
   * Throws {@link StoppedError} once stopping has begun: long startups call it between steps so
   * a Ctrl-C during startup does not start anything more.
   */
  throwIfStopping(): void {
    if (this.#stopping) throw new StoppedError();
  }

  /** True once {@link stop} has been called. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /**
   * Stops every registered resource, newest first, and resolves when everything is stopped,
   * including resources registered while stopping. Later calls wait for the same stop.
   */
  async stop(reason: string): Promise<void> {
    this.#stopping ??= this.#run(reason);
    let current: Promise<void>;
    do {
      current = this.#stopping;
      await current;
    } while (current !== this.#stopping);
  }

  async #run(reason: string): Promise<void> {
    this.#log.info({ reason }, "stopping");
    for (const step of [...this.#steps].reverse()) await this.#stopStep(step);
  }

  async #stopStep(step: Stoppable): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        step.stop(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`did not stop within ${this.#stepTimeoutMs} ms`)),
            this.#stepTimeoutMs,
          );
        }),
      ]);
      this.#log.debug({ step: step.name }, "stopped");
    } catch (err) {
      this.#log.error({ err, step: step.name }, "failed to stop cleanly");
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Stops the lifecycle on SIGINT or SIGTERM and resolves with the signal's name once everything
 * is stopped. A second signal while stopping exits at once with status 130.
 */
export function stopOnSignals(lifecycle: Lifecycle, log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (lifecycle.stopping) {
        log.warn({ signal }, "second signal while stopping; exiting now");
        process.exit(130);
      }
      void lifecycle.stop(signal).then(() => {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        resolve(signal);
      });
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
