// The two places that compute what resources count against quotas must agree: demandOf (charged
// on every request) and the backfill of migration 0014 (what tenants held when quotas arrived).
// Resources of every kind are recorded through the store, which charges them; the backfill's
// query over the same rows must come to the same usage.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { inTransaction } from "../../db/index.js";
import { newId, QuotaExceededError } from "../../kernel/index.js";
import { packageRoot } from "../../meta/index.js";
import { InventoryStore } from "./index.js";

let t: TestDatabase;
let store: InventoryStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new InventoryStore(t.db, newId);
});
afterAll(async () => t.drop());

/** The SELECT of the backfill in migration 0014, as committed. */
function backfillQuery(): string {
  const sql = readFileSync(`${packageRoot()}/src/db/migrations/0014_tenant_quotas.sql`, "utf8");
  const start = sql.indexOf('SELECT "tenant_id", "quota", "scope", sum("amount")');
  expect(start).toBeGreaterThan(0);
  return sql.slice(start).replace(/;\s*$/, "");
}

const SPECS = {
  network: [{ prefixLength: 24 }, { prefixLength: 29, networkPool: "p" }],
  server: [{ machineClass: "m1-large", image: "debian-12" }, { machineClass: "m1-small" }],
  cluster: [{ machineClass: "m1-large", workers: 2, prefixLength: 26, version: "1.34" }],
  bucket: [{ quotaGiB: 7, versioning: false }],
} as const;

describe("quota usage", () => {
  it("is the same whether charged request by request or computed by the migration's backfill", async () => {
    const tenantId = newId();
    const environments = [newId(), newId()];
    await inTransaction(t.db, async (tx) => {
      let n = 0;
      for (const environmentId of environments) {
        for (const [kind, specs] of Object.entries(SPECS)) {
          for (const spec of specs) {
            await store.createResource(tx, {
              kind: kind as keyof typeof SPECS,
              tenantId,
              projectId: newId(),
              environmentId,
              datacenterId: n % 3 === 0 ? "dc2" : "dc1",
              name: `r${n++}`,
              spec: { ...spec },
            });
          }
        }
      }
    });
    const charged = await store.quotas.usage(tenantId);
    const computed = await t.admin.query<{ quota: string; scope: string; sum: string }>(
      `SELECT * FROM (${backfillQuery()}) b WHERE tenant_id = '${tenantId}'`,
    );
    expect(new Map(computed.map((r) => [`${r.quota}/${r.scope}`, Number(r.sum)]))).toEqual(charged);
    expect(charged.get("servers/m1-large")).toBe(2 + 2 * 3);
  });

  it("never lets concurrent charges of one tenant overshoot a limit", async () => {
    const tenantId = newId();
    await inTransaction(t.db, (tx) =>
      store.quotas.setOverrides(tx, tenantId, "buckets", { "*": 5 }),
    );
    const attempts = await Promise.allSettled(
      Array.from({ length: 20 }, () =>
        inTransaction(t.db, (tx) =>
          store.quotas.charge(tx, tenantId, [{ quota: "buckets", scope: "*", amount: 1 }]),
        ),
      ),
    );
    expect(attempts.filter((a) => a.status === "fulfilled")).toHaveLength(5);
    expect(
      attempts.filter((a) => a.status === "rejected" && a.reason instanceof QuotaExceededError),
    ).toHaveLength(15);
    expect((await store.quotas.usage(tenantId)).get("buckets/*")).toBe(5);
  });
});
