import { describe, expect, it } from "vitest";
import type { Resource } from "../contexts/inventory/index.js";
import { resourceJson, resourceOut } from "./represent.js";

describe("resourceJson", () => {
  const row = (change: Partial<Resource> = {}): Resource => ({
    id: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f",
    kind: "network",
    tenantId: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e70",
    projectId: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e71",
    environmentId: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e72",
    datacenterId: "dc1",
    name: "n",
    labels: { team: "a" },
    spec: { prefixLength: 28 },
    status: {
      conditions: [{ type: "Ready", status: "True" }],
      steps: { allocate: { state: "done", commandId: "c1" }, "observe:drift": { state: "done" } },
      observations: { drift: 0 },
    },
    generation: 1,
    observedGeneration: 1,
    deletionRequestedAt: null,
    version: 3,
    createdAt: new Date("2026-01-02T03:04:05.006Z"),
    updatedAt: new Date("2026-01-02T03:04:06.007Z"),
    ...change,
  });

  it("is the resource's representation as JSON, for each audience", () => {
    for (const audience of ["tenant", "operator"] as const) {
      expect(resourceJson(row(), audience)).toBe(JSON.stringify(resourceOut(row(), audience)));
    }
    expect(resourceJson(row(), "tenant")).not.toBe(resourceJson(row(), "operator"));
  });

  it("is written anew for every new version of the row", () => {
    expect(JSON.parse(resourceJson(row(), "tenant"))).toMatchObject({ metadata: { version: 3 } });
    const changed = row({
      version: 4,
      updatedAt: new Date("2026-01-02T03:04:07.000Z"),
      labels: { team: "b" },
    });
    expect(resourceJson(changed, "tenant")).toBe(JSON.stringify(resourceOut(changed, "tenant")));
    expect(JSON.parse(resourceJson(changed, "tenant"))).toMatchObject({
      metadata: { version: 4, labels: { team: "b" } },
    });
    // A row restored to an older state of the same version is not the one written before.
    const restored = row({ version: 4, updatedAt: new Date("2026-01-02T03:04:08.000Z") });
    expect(resourceJson(restored, "tenant")).toBe(JSON.stringify(resourceOut(restored, "tenant")));
  });
});
