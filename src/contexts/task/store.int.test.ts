import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { inTransaction, type Tx } from "../../db/index.js";
import { InvalidTransitionError, newId, NotFoundError } from "../../kernel/index.js";
import { TaskStore } from "./index.js";

let t: TestDatabase;
let store: TaskStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new TaskStore(t.db, newId);
});
afterAll(async () => t.drop());

const tx = <T>(fn: (q: Tx) => Promise<T>) => inTransaction(t.db, fn);
const newTask = (tenantId = newId()) =>
  tx((q) =>
    store.create(q, {
      operation: "network.create",
      resourceKind: "network",
      resourceId: newId(),
      tenantId,
      datacenterId: "dc1",
      actor: "user:alice",
      correlationId: newId(),
    }),
  );

describe("TaskStore", () => {
  it("walks created → queued → started → progress → succeeded and keeps the history", async () => {
    const task = await newTask();
    expect(task.state).toBe("created");
    await tx((q) => store.transition(q, task.id, "queued", { actor: "sentral" }));
    await tx((q) =>
      store.transition(q, task.id, "started", { actor: "nett", message: "applying" }),
    );
    await tx((q) =>
      store.transition(q, task.id, "progress", {
        actor: "nett",
        percent: 40,
        message: "VLAN configured",
      }),
    );
    const done = await tx((q) => store.transition(q, task.id, "succeeded", { actor: "nett" }));
    expect(done.task).toMatchObject({ state: "succeeded", progressPercent: 100 });
    expect(done.task.finishedAt).toBeInstanceOf(Date);
    const history = await store.history(task.id);
    expect(history.map((e) => [e.seq, e.verb, e.actor, e.percent])).toEqual([
      [1, "created", "user:alice", null],
      [2, "queued", "sentral", null],
      [3, "started", "nett", null],
      [4, "progress", "nett", 40],
      [5, "succeeded", "nett", 100],
    ]);
    expect(history[3]?.message).toBe("VLAN configured");
  });

  it("refuses every move out of a terminal state and records nothing for it", async () => {
    const task = await newTask();
    await tx((q) =>
      store.transition(q, task.id, "failed", { actor: "nett", message: "switch unreachable" }),
    );
    for (const verb of [
      "queued",
      "started",
      "progress",
      "succeeded",
      "cancelled",
      "failed",
    ] as const) {
      await expect(tx((q) => store.transition(q, task.id, verb, { actor: "x" }))).rejects.toThrow(
        InvalidTransitionError,
      );
    }
    expect((await store.get(task.id)).reason).toBe("switch unreachable");
    expect((await store.history(task.id)).map((e) => e.verb)).toEqual(["created", "failed"]);
  });

  it("refuses progress before the task started", async () => {
    const task = await newTask();
    await expect(
      tx((q) => store.transition(q, task.id, "progress", { actor: "x", percent: 10 })),
    ).rejects.toThrow("cannot go from created to progress");
  });

  it("lets an operator replay a failed task back to queued, in the history", async () => {
    const task = await newTask();
    await tx((q) => store.transition(q, task.id, "failed", { actor: "nett", message: "boom" }));
    const replayed = await tx((q) =>
      store.requeueForReplay(q, task.id, { actor: "operator:bob", reason: "switch fixed" }),
    );
    expect(replayed).toMatchObject({ state: "queued", reason: "", finishedAt: null });
    expect((await store.history(task.id)).at(-1)).toMatchObject({
      verb: "queued",
      actor: "operator:bob",
      message: "replay: switch fixed",
    });
    await expect(
      tx((q) => store.requeueForReplay(q, task.id, { actor: "operator:bob", reason: "again" })),
    ).rejects.toThrow(InvalidTransitionError);
  });

  it("serialises concurrent transitions of one task: history has no gaps or duplicates", async () => {
    const task = await newTask();
    await tx((q) => store.transition(q, task.id, "started", { actor: "w" }));
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        tx((q) => store.transition(q, task.id, "progress", { actor: "w", percent: i * 5 })),
      ),
    );
    const seqs = (await store.history(task.id)).map((e) => e.seq);
    expect(seqs).toEqual(Array.from({ length: 22 }, (_, i) => i + 1));
  });

  it("scopes reads to a tenant", async () => {
    const task = await newTask("0195e1b2-0000-7000-8000-000000000001");
    await expect(store.get(task.id, { tenantId: newId() })).rejects.toThrow(NotFoundError);
    expect(
      (await store.get(task.id, { tenantId: "0195e1b2-0000-7000-8000-000000000001" })).id,
    ).toBe(task.id);
  });
});
