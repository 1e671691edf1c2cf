import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../../test/support/database.js";
import { inTransaction } from "../../db/index.js";
import {
  AlreadyExistsError,
  InUseError,
  newId,
  NotFoundError,
  parseLabelSelector,
  VersionConflictError,
} from "../../kernel/index.js";
import { TenancyStore } from "./index.js";

let t: TestDatabase;
let store: TenancyStore;
beforeAll(async () => {
  t = await createTestDatabase();
  store = new TenancyStore(t.db, newId);
});
afterAll(async () => t.drop());

const tx = <T>(fn: Parameters<typeof inTransaction<T>>[1]) => inTransaction(t.db, fn);

describe("TenancyStore", () => {
  it("creates tenants, projects and environments, names unique within their parent", async () => {
    const acme = await tx((q) => store.createTenant(q, { name: "acme", labels: { tier: "gold" } }));
    expect(acme).toMatchObject({ name: "acme", version: 1, labels: { tier: "gold" } });
    await expect(tx((q) => store.createTenant(q, { name: "acme" }))).rejects.toThrow(
      AlreadyExistsError,
    );

    const web = await tx((q) => store.createProject(q, { tenantId: acme.id, name: "web" }));
    await expect(
      tx((q) => store.createProject(q, { tenantId: acme.id, name: "web" })),
    ).rejects.toThrow('project "web" already exists in tenant acme');
    const other = await tx((q) => store.createTenant(q, { name: "other" }));
    // The same name under another tenant is fine.
    await tx((q) => store.createProject(q, { tenantId: other.id, name: "web" }));

    const prod = await tx((q) =>
      store.createEnvironment(q, {
        tenantId: acme.id,
        projectId: web.id,
        name: "prod",
        datacenterId: "dc1",
      }),
    );
    expect(await store.getEnvironment(acme.id, prod.id)).toMatchObject({
      name: "prod",
      datacenterId: "dc1",
    });
  });

  it("answers not found for another tenant's project, exactly as if it did not exist", async () => {
    const a = await tx((q) => store.createTenant(q, { name: "tenant-a" }));
    const b = await tx((q) => store.createTenant(q, { name: "tenant-b" }));
    const secret = await tx((q) => store.createProject(q, { tenantId: b.id, name: "secret" }));
    await expect(store.getProject(a.id, secret.id)).rejects.toThrow(NotFoundError);
    await expect(
      tx((q) =>
        store.createEnvironment(q, {
          tenantId: a.id,
          projectId: secret.id,
          name: "e",
          datacenterId: "dc1",
        }),
      ),
    ).rejects.toThrow(NotFoundError);
    await expect(
      tx((q) => store.updateProject(q, a.id, secret.id, 1, { displayName: "pwned" })),
    ).rejects.toThrow(NotFoundError);
    expect((await store.getProject(b.id, secret.id)).displayName).toBe("");
  });

  it("lets exactly one of two writers from the same version win; the other gets a conflict", async () => {
    const tenant = await tx((q) => store.createTenant(q, { name: "race" }));
    const results = await Promise.allSettled([
      tx((q) => store.updateTenant(q, tenant.id, tenant.version, { displayName: "first" })),
      tx((q) => store.updateTenant(q, tenant.id, tenant.version, { displayName: "second" })),
    ]);
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.filter((r) => r.status === "rejected");
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(VersionConflictError);
    expect((lost[0] as PromiseRejectedResult).reason).toMatchObject({
      expectedVersion: 1,
      currentVersion: 2,
    });
    const current = await store.getTenant(tenant.id);
    expect(current.version).toBe(2);
    expect(current.displayName).toBe(
      (won[0] as PromiseFulfilledResult<{ displayName: string }>).value.displayName,
    );
  });

  it("refuses to delete a tenant that still has projects, and a stale delete", async () => {
    const tenant = await tx((q) => store.createTenant(q, { name: "parent" }));
    const project = await tx((q) => store.createProject(q, { tenantId: tenant.id, name: "child" }));
    await expect(tx((q) => store.deleteTenant(q, tenant.id, tenant.version))).rejects.toThrow(
      InUseError,
    );
    await tx((q) => store.deleteProject(q, tenant.id, project.id, project.version));
    await expect(tx((q) => store.deleteTenant(q, tenant.id, 7))).rejects.toThrow(
      VersionConflictError,
    );
    await tx((q) => store.deleteTenant(q, tenant.id, tenant.version));
    await expect(store.getTenant(tenant.id)).rejects.toThrow(NotFoundError);
  });

  it("pages with a cursor and filters by label selector", async () => {
    const tenant = await tx((q) => store.createTenant(q, { name: "pager" }));
    for (let i = 0; i < 7; i++) {
      await tx((q) =>
        store.createProject(q, {
          tenantId: tenant.id,
          name: `p${i}`,
          labels: { parity: i % 2 ? "odd" : "even", n: String(i) },
        }),
      );
    }
    const seen: string[] = [];
    let after: string | undefined;
    do {
      const page = await store.listProjects(tenant.id, { limit: 3, after });
      seen.push(...page.items.map((p) => p.name));
      after = page.next;
    } while (after);
    expect(seen).toEqual(["p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    const odd = await store.listProjects(tenant.id, {
      limit: 10,
      labels: parseLabelSelector("parity=odd,n notin (3)"),
    });
    expect(odd.items.map((p) => p.name)).toEqual(["p1", "p5"]);
    const none = await store.listProjects(tenant.id, {
      limit: 10,
      labels: parseLabelSelector("!parity"),
    });
    expect(none.items).toEqual([]);
  });
});
