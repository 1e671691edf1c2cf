import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { inTransaction, SqlState, sqlStateOf, type Tx } from "../../db/index.js";
import { AuditStore } from "./index.js";

let t: TestDatabase;
let store: AuditStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new AuditStore(t.db);
});
afterAll(async () => t.drop());

const tx = <T>(fn: (q: Tx) => Promise<T>) => inTransaction(t.db, fn);
const entry = (over: Partial<Parameters<AuditStore["record"]>[1]> = {}) => ({
  actor: "user:alice",
  tenantId: "0195e1b2-0000-7000-8000-00000000000a",
  datacenterId: "dc1",
  action: "network.create",
  resourceKind: "network",
  resourceId: "n1",
  before: null,
  after: { name: "web" },
  correlationId: "corr-1",
  ...over,
});

describe("AuditStore", () => {
  it("appends records with actor, tenant, action, resource, before/after, correlation and time", async () => {
    const rec = await tx((q) => store.record(q, entry()));
    expect(rec).toMatchObject({
      actor: "user:alice",
      action: "network.create",
      after: { name: "web" },
      correlationId: "corr-1",
    });
    expect(rec.at).toBeInstanceOf(Date);
  });

  it("filters by resource, actor and time, in write order", async () => {
    await tx((q) => store.record(q, entry({ resourceId: "n2", actor: "user:bob" })));
    await tx((q) => store.record(q, entry({ resourceId: "n2", action: "network.delete" })));
    const byResource = await store.list(
      { resourceKind: "network", resourceId: "n2" },
      { limit: 10 },
    );
    expect(byResource.items.map((r) => r.action)).toEqual(["network.create", "network.delete"]);
    const byActor = await store.list({ actor: "user:bob" }, { limit: 10 });
    expect(byActor.items.map((r) => r.resourceId)).toEqual(["n2"]);
    const future = await store.list({ from: new Date(Date.now() + 60_000) }, { limit: 10 });
    expect(future.items).toEqual([]);
  });

  it("cannot be changed or removed, not even by the audit role itself", async () => {
    await tx((q) => store.record(q, entry({ resourceId: "immutable" })));
    const attempt = (statement: string) =>
      tx(async (q) => {
        await q.execute(sql.raw("SET LOCAL ROLE dv_audit"));
        await q.execute(sql.raw(statement));
      });
    await expect(attempt("UPDATE audit.records SET actor = 'mallory'")).rejects.toSatisfy(
      (err) => sqlStateOf(err) === SqlState.InsufficientPrivilege,
    );
    await expect(attempt("DELETE FROM audit.records")).rejects.toSatisfy(
      (err) => sqlStateOf(err) === SqlState.InsufficientPrivilege,
    );
    await expect(t.admin.query("UPDATE audit.records SET actor = 'mallory'")).rejects.toThrow(
      /append-only/,
    );
    const rows = await store.list({ resourceId: "immutable" }, { limit: 10 });
    expect(rows.items.map((r) => r.actor)).toEqual(["user:alice"]);
  });
});
