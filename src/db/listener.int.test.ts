// The LISTEN connection of a process (src/db/listener.ts) against a real PostgreSQL: `sync()` is
// the barrier a cache kept by notifications relies on to answer as fresh as a read, and the
// connection comes back (channels listened again, a new epoch) when the server drops it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

describe("the LISTEN connection", () => {
  it("sync() returns only after every notification committed before it was handled", async () => {
    const seen: string[] = [];
    const unlisten = await t.db.listen("dv_probe", (payload) => seen.push(payload));
    const sync = t.db.sync?.bind(t.db);
    if (sync === undefined) throw new Error("a PostgreSQL database offers sync()");
    for (let round = 0; round < 20; round++) {
      // Committed by another connection (the superuser's pool) just before the barrier: without
      // it the handler has usually not been called yet when the commit is answered.
      await t.admin.query("SELECT pg_notify('dv_probe', $1)", [String(round)]);
      await sync();
      expect(seen.at(-1)).toBe(String(round));
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    await unlisten();
  });

  it("fifty calls at once each see what was committed before them", async () => {
    const seen = new Set<string>();
    const unlisten = await t.db.listen("dv_probe", (payload) => seen.add(payload));
    const sync = t.db.sync?.bind(t.db) as () => Promise<number>;
    const checks = Array.from({ length: 50 }, async (_, i) => {
      await t.admin.query("SELECT pg_notify('dv_probe', $1)", [`together-${i}`]);
      await sync();
      return seen.has(`together-${i}`);
    });
    expect(await Promise.all(checks)).toEqual(Array.from({ length: 50 }, () => true));
    await unlisten();
  });

  it("opens again by itself, with its channels, when the server ends it and nobody reads", async () => {
    // What a controller relies on: its LISTEN sources are heard again without any sync().
    const seen: string[] = [];
    const unlisten = await t.db.listen("dv_probe", (payload) => seen.push(payload));
    const ended = await t.admin.query<{ ended: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%-listen' AND backend_type = 'client backend'",
    );
    expect(ended.map((r) => r.ended)).toEqual([true]);
    await eventually(
      async () => {
        await t.admin.query("SELECT pg_notify('dv_probe', 'heard again')");
        return seen.includes("heard again") ? true : undefined;
      },
      15_000,
      "the channel to be heard again",
    );
    await unlisten();
  });

  it("comes back with a new epoch and its channels when the server ends it", async () => {
    const seen: string[] = [];
    const unlisten = await t.db.listen("dv_probe", (payload) => seen.push(payload));
    const sync = t.db.sync?.bind(t.db) as () => Promise<number>;
    const first = await sync();
    const ended = await t.admin.query<{ ended: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE datname = current_database() AND application_name LIKE '%-listen' AND backend_type = 'client backend'",
    );
    expect(ended.map((r) => r.ended)).toEqual([true]);
    // A barrier across the loss fails (its caller reads the database instead) or, once the
    // connection is open again, answers with the next epoch.
    const epoch = await eventually(() => sync().catch(() => undefined), 15_000, "a new epoch");
    expect(epoch).toBeGreaterThan(first);
    await t.admin.query("SELECT pg_notify('dv_probe', 'after')");
    await sync();
    expect(seen).toContain("after");
    await unlisten();
  });
});
