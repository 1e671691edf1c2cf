import { describe, expect, it } from "vitest";
import type { TenancyStore } from "../../contexts/tenancy/index.js";
import { NotFoundError } from "../../kernel/index.js";
import { type CallContext, Scope, SCOPE_CACHE_MS } from "./scope.js";

const TENANT = "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f";

/** A tenancy of one tenant that counts how often it is asked, and can lose its tenant. */
function tenancy() {
  const state = { reads: 0, exists: true };
  const store = {
    async getTenant(id: string) {
      state.reads++;
      if (!state.exists || id !== TENANT) throw new NotFoundError("tenant", id);
      return { id, name: "acme", createdAt: new Date("2026-01-01T00:00:00Z") };
    },
  } as unknown as TenancyStore;
  return { state, store };
}

const ctx: CallContext = {
  principal: { subject: "alice", role: "tenant-admin", tenant: "acme", issuedAt: 1_800_000_000 },
  correlationId: "c",
};

describe("the scope's memory of tenants", () => {
  it("asks the tenancy once, again after its lifetime, and forgets a deleted tenant at once", async () => {
    let now = Date.parse("2026-12-05T09:00:00Z");
    const { state, store } = tenancy();
    const scope = new Scope(store, () => new Date(now));
    expect(await scope.tenantId(ctx, TENANT)).toBe(TENANT);
    expect(await scope.tenantId(ctx, TENANT)).toBe(TENANT);
    expect(state.reads).toBe(1);

    // A deletion another process announced is forgotten: the next request asks, and is refused.
    state.exists = false;
    scope.forgetTenant(TENANT);
    await expect(scope.tenantId(ctx, TENANT)).rejects.toBeInstanceOf(NotFoundError);

    // An announcement that never came costs at most the cache's lifetime.
    state.exists = true;
    expect(await scope.tenantId(ctx, TENANT)).toBe(TENANT);
    const reads = state.reads;
    state.exists = false;
    now += SCOPE_CACHE_MS - 1;
    expect(await scope.tenantId(ctx, TENANT)).toBe(TENANT);
    now += 1;
    await expect(scope.tenantId(ctx, TENANT)).rejects.toBeInstanceOf(NotFoundError);
    expect(state.reads).toBe(reads + 1);
  });
});
