// A `GET` of a resource by id is answered from the API process's memory while the row is
// unchanged (ResourceCache, src/contexts/inventory/resource-cache.ts). What a caller must never
// notice: a change committed by another process before the request came — a controller writing
// the status, the tenant's change through another replica, the row's removal — is in the answer.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../../test/support/api.js";
import { InventoryStore } from "../contexts/inventory/index.js";
import { type Database, inTransaction } from "../db/index.js";
import { newId } from "../kernel/index.js";

let api: ApiHarness;
let acme: Seeded;
let other: Database;
let url: string;

beforeAll(async () => {
  api = await startApi();
  acme = await seedTenant(api, "acme");
  // Another process: a pool of its own, so its commits reach the API only through PostgreSQL.
  other = await api.t.connect(2);
  const { tenant, project, environment, network } = acme;
  url = `/api/v1/tenants/${tenant.id}/projects/${project.id}/environments/${environment.id}/networks/${network.id}`;
});
afterAll(async () => api.close());

async function get(): Promise<{
  status: number;
  etag: string | undefined;
  body: { status?: unknown; type?: string };
}> {
  const response = await api.call(acme.adminToken, { method: "GET", url });
  return {
    status: response.statusCode,
    etag: response.headers.etag,
    body: response.json(),
  };
}

describe("GET of a resource by id", () => {
  it("answers each status another process committed just before it", async () => {
    const inventory = new InventoryStore(other, newId);
    let current = await get();
    expect(current.status).toBe(200);
    for (let round = 1; round <= 25; round++) {
      const version = Number(current.etag?.replaceAll('"', ""));
      await inTransaction(other, (tx) =>
        inventory.writeStatuses(tx, [
          {
            id: acme.network.id,
            status: { conditions: [{ type: "Probe", status: "True", reason: `Round${round}` }] },
            observedGeneration: 1,
            version,
          },
        ]),
      );
      current = await get();
      expect(current.etag).toBe(`"${version + 1}"`);
      expect(JSON.stringify(current.body.status)).toContain(`Round${round}`);
      // Unchanged since: the same answer again, from memory.
      expect((await get()).etag).toBe(current.etag);
    }
    expect(api.facade.resourceReads.size).toBe(1);
  });

  it("answers 404 at once after another process removed the row", async () => {
    expect((await get()).status).toBe(200);
    await api.t.admin.query("DELETE FROM inventory.resources WHERE id = $1", [acme.network.id]);
    const gone = await get();
    expect(gone.status).toBe(404);
    expect(gone.body.type).toMatch(/not-found$/);
  });
});
