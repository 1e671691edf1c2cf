// Runs one fast-check `fc.commands` model against a real implementation and records what it found
// as a chaos scenario: runs, commands executed, and whether any sequence broke the model (fast-check
// stops at the first one and shrinks it; the shrunk sequence is the test's failure message).
import fc from "fast-check";
import { expect } from "vitest";
import { record } from "../report.js";

/** What the runs of one model did, counted by the commands themselves. */
export interface Tally {
  runs: number;
  commands: number;
  /** Calls the model expected to be refused (pool exhausted, stale token, illegal move…) that were. */
  refused: number;
}

/**
 * A command of a model: counts itself, then does its work. `check` is its precondition on the
 * model; `apply` runs it against the real system, asserts the outcome and updates the model.
 */
export abstract class ModelCommand<
  Model extends object,
  Real extends { readonly tally: Tally },
> implements fc.AsyncCommand<Model, Real> {
  check(_model: Readonly<Model>): boolean {
    return true;
  }

  async run(model: Model, real: Real): Promise<void> {
    real.tally.commands += 1;
    await this.apply(model, real);
  }

  protected abstract apply(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

/** How to run a model. */
export interface ModelOptions<Model extends object, Real extends { readonly tally: Tally }> {
  /** The scenario id in the chaos table (`model-allocator`). */
  readonly scenario: string;
  readonly commands: fc.Arbitrary<fc.AsyncCommand<Model, Real>>[];
  /** A clean system and the model of it, for one run. */
  readonly setup: (tally: Tally) => Promise<{ model: Model; real: Real }>;
  readonly numRuns: number;
  readonly maxCommands: number;
}

/**
 * Checks the model over `numRuns` random command sequences, records the figures, then fails with
 * fast-check's report (seed, shrunk command sequence) if a sequence broke it. A run can be
 * replayed with `DV_MODEL_SEED=<seed>` (and `DV_MODEL_PATH=<path>` to skip to the shrunk case).
 */
export async function checkModel<Model extends object, Real extends { readonly tally: Tally }>(
  options: ModelOptions<Model, Real>,
): Promise<void> {
  const tally: Tally = { runs: 0, commands: 0, refused: 0 };
  const seed = process.env.DV_MODEL_SEED;
  const path = process.env.DV_MODEL_PATH;
  const started = performance.now();
  const details = await fc.check(
    fc.asyncProperty(
      fc.commands(options.commands, { maxCommands: options.maxCommands, size: "max" }),
      async (commands) => {
        tally.runs += 1;
        const { setup } = options;
        await fc.asyncModelRun(() => setup(tally), commands);
      },
    ),
    {
      numRuns: options.numRuns,
      ...(seed === undefined ? {} : { seed: Number(seed) }),
      ...(path === undefined ? {} : { path }),
    },
  );
  const seconds = (performance.now() - started) / 1000;
  record({
    scenario: options.scenario,
    faults: 0,
    operations: tally.commands,
    lost: 0,
    duplicated: 0,
    // fast-check stops at the first sequence that breaks the model: 1 means "a counterexample".
    violations: details.failed ? 1 : 0,
    figures: {
      runs: details.numRuns,
      // Runs include the re-runs of shrinking, when a counterexample was found.
      executions: tally.runs,
      commands: tally.commands,
      refused: tally.refused,
      seed: details.seed,
      seconds: Number(seconds.toFixed(1)),
      ...(details.failed ? { shrinks: details.numShrinks } : {}),
    },
  });
  const report = details.failed
    ? `${await fc.asyncDefaultReportMessage(details)}\n\nThe shrunk sequence failed with: ${String(details.errorInstance)}`
    : undefined;
  expect(details.failed, report).toBe(false);
}

/** The error `promise` was rejected with (counted); fails the command if it was fulfilled. */
export async function refusal(tally: Tally, promise: Promise<unknown>): Promise<unknown> {
  let value: unknown;
  try {
    value = await promise;
  } catch (err) {
    tally.refused += 1;
    return err;
  }
  return expect.fail(`expected a refusal, got ${JSON.stringify(value)}`);
}
