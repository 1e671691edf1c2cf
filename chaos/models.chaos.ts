// Model-based tests (issue 11): fast-check `fc.commands` drives the allocator, the shard leases and
// the task state machine through random command sequences against the real PostgreSQL
// implementations, and after every command compares what they answered and what their tables
// hold with a model written from the documentation (chaos/support/models/). It proves, over 1,000
// sequences per model in a full run: no VLAN, prefix, server or capacity is held twice or leaked,
// prefixes are carved best fit and merged back, a full pool refuses with its typed error, and two
// owners reserving at once get what one order of the two calls would have given them; at most one
// grant of a shard passes the fence, tokens grow by one per grant, only the current holder renews
// or releases, and of two replicas taking a shard at once one wins; a task moves only along its
// state machine, final states stay final, racing workers leave one serial history, and that
// history has no gap. A sequence that breaks a model is shrunk and printed with its seed (replay:
// DV_MODEL_SEED=<seed>); it then becomes an ordinary regression test beside the store's
// integration test (src/contexts/inventory/allocator-regressions.int.test.ts).
import { afterAll, beforeAll, describe, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { InventoryStore } from "../src/contexts/inventory/index.js";
import { LeaseStore } from "../src/contexts/runtime/index.js";
import { TaskStore } from "../src/contexts/task/index.js";
import { newId } from "../src/kernel/index.js";
import { allocatorCommands, allocatorSetup } from "./support/models/allocator.js";
import { leaseCommands, leaseSetup } from "./support/models/leases.js";
import { checkModel } from "./support/models/run.js";
import { taskCommands, taskSetup } from "./support/models/tasks.js";
import { size } from "./support/report.js";

const RUNS = size(1000, 40);
const MAX_COMMANDS = 25;

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

describe("models of the stores, on the real PostgreSQL", () => {
  it("the allocator never assigns a VLAN, prefix, server or capacity twice, and frees exactly what was held", async () => {
    const store = new InventoryStore(t.db, newId);
    await checkModel({
      scenario: "model-allocator",
      commands: allocatorCommands,
      setup: (tally) => allocatorSetup(t, store, tally),
      numRuns: RUNS,
      maxCommands: MAX_COMMANDS,
    });
  });

  it("a shard's lease has one holder at a time, and only its current grant passes the fence", async () => {
    const store = new LeaseStore(t.db);
    await checkModel({
      scenario: "model-leases",
      commands: leaseCommands,
      setup: (tally) => leaseSetup(t, store, tally),
      numRuns: RUNS,
      maxCommands: MAX_COMMANDS,
    });
  });

  it("a task moves only along its state machine, and its history records every move once", async () => {
    const store = new TaskStore(t.db, newId);
    await checkModel({
      scenario: "model-tasks",
      commands: taskCommands,
      setup: (tally) => taskSetup(t, store, tally),
      numRuns: RUNS,
      maxCommands: MAX_COMMANDS,
    });
  });
});
