// A pool of one connection whose connection breaks while it sends BEGIN (a network fault:
// the server's answer lost, then the connection reset) still serves the next transaction. Before
// the fix, drizzle's transaction never released a client that failed on BEGIN, and such a pool
// was dead for good: every later checkout timed out.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { startTcpRelay, type TcpRelay } from "../../test/support/tcp-relay.js";
import { createLogger } from "../observability/index.js";
import { connectPostgres, type Database } from "./index.js";

let t: TestDatabase;
let relay: TcpRelay;
let db: Database;
beforeAll(async () => {
  t = await createTestDatabase();
  const url = new URL(t.url());
  relay = await startTcpRelay(Number(url.port));
  url.port = String(relay.port);
  db = await connectPostgres({
    url: url.toString(),
    poolMax: 1,
    connectTimeoutMs: 2_000,
    log: createLogger({ level: "silent", service: "test", datacenterId: "dc1" }),
  });
});
afterAll(async () => {
  await db.close();
  await relay.close();
  await t.drop();
});

/** The messages of an error and of its causes, outermost first. */
function causes(err: unknown): string[] {
  const messages: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages;
}

describe("a transaction whose connection fails on BEGIN", () => {
  it("gives its connection back: the next transaction runs", async () => {
    const one = (tx: Parameters<Parameters<Database["transaction"]>[0]>[0]) =>
      tx.execute("SELECT 1 AS one");
    await db.transaction(one);
    // The answer to BEGIN is lost; healing resets the connection, so BEGIN fails.
    await relay.fault("half-open");
    const broken = db.transaction(one);
    await new Promise((r) => setTimeout(r, 300));
    await relay.heal();
    // BEGIN is sent ahead (src/db/pipeline.ts): the statement behind it, or the rollback after
    // that, is the one that reports the broken connection, as its cause.
    const failure = await broken.catch((err: unknown) => err);
    expect(causes(failure).join(" <- ")).toMatch(/ECONNRESET|terminated/i);
    // The pool's only connection was given back (and dropped, being broken): a new one serves.
    const result: unknown = await db.transaction(one);
    expect((result as { rows: { one: number }[] }).rows).toEqual([{ one: 1 }]);
  });
});
