import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isTerminal, nextTaskState, TASK_STATES, TASK_VERBS, type TaskState } from "./tasks.js";

describe("task state machine", () => {
  it("walks the happy path of the seed's verbs", () => {
    let state: TaskState = "created";
    for (const verb of ["queued", "started", "progress", "progress", "succeeded"] as const) {
      const next = nextTaskState(state, verb);
      expect(next, `${state} --${verb}-->`).toBeDefined();
      state = next as TaskState;
    }
    expect(state).toBe("succeeded");
  });

  it("never moves a terminal task, whatever verbs follow", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TASK_VERBS), { maxLength: 30 }), (verbs) => {
        let state: TaskState = "created";
        let terminalAt: TaskState | undefined;
        for (const verb of verbs) {
          const next = nextTaskState(state, verb);
          if (terminalAt) expect(next).toBeUndefined();
          if (next) state = next;
          if (isTerminal(state)) terminalAt ??= state;
        }
        if (terminalAt) expect(state).toBe(terminalAt);
      }),
    );
  });

  it("accepts progress only while started", () => {
    for (const state of TASK_STATES) {
      expect(nextTaskState(state, "progress") !== undefined).toBe(state === "started");
    }
  });
});
