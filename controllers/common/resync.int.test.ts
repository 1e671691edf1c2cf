// Level-triggered reconcilers look at every resource again on each resync; one that has nothing
// to change must not write. A needless write bumps the resource's version, so a tenant's change
// sent with the version it just read (If-Match) fails with 409 for nothing, and every resource
// row is rewritten every resync.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { FAST_CONTROLLER, type Plane, startPlane } from "../../test/support/plane.js";

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ controllers: true, workers: ["nett"] });
});
afterAll(async () => p.close());

describe("a resync of a settled resource", () => {
  it("writes nothing: a Ready network keeps its version across resyncs", async () => {
    const { resource } = await p.request("network", "settled", { prefixLength: 28 });
    // Ready, and its first observation (sent right after Ready) recorded.
    const settled = await eventually(
      async () => {
        const r = await p.services.inventory.getResourceById(resource.id);
        const steps = (r.status.steps ?? {}) as Record<string, { state: string }>;
        const observed = Object.entries(steps).some(
          ([name, s]) => name.startsWith("observe:") && s.state === "done",
        );
        return r.observedGeneration === r.generation && observed ? r : undefined;
      },
      30_000,
      "the network to be Ready and observed once",
    );
    // Three resync rounds (each key is looked at again every resyncMs, ±20 %).
    await new Promise((r) => setTimeout(r, FAST_CONTROLLER.resyncMs * 3));
    const later = await p.services.inventory.getResourceById(resource.id);
    expect(later.status).toEqual(settled.status);
    expect(later.version).toBe(settled.version);
  });
});
