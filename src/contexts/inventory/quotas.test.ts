import { describe, expect, it } from "vitest";
import { demandDelta, demandOf } from "./quotas.js";

const at = { datacenterId: "dc1", environmentId: "env-1" };

describe("what a resource counts against quotas", () => {
  it("charges a network a VLAN and its prefix's addresses in its datacenter", () => {
    expect(demandOf("network", { prefixLength: 26 }, at)).toEqual([
      { quota: "vlans", scope: "dc1", amount: 1 },
      { quota: "addresses", scope: "dc1", amount: 64 },
      { quota: "networksPerEnvironment", scope: "env-1", amount: 1 },
    ]);
  });

  it("charges a cluster its workers plus one server of its class, a VLAN and its prefix", () => {
    expect(
      demandOf("cluster", { machineClass: "m1-large", workers: 3, prefixLength: 24 }, at),
    ).toEqual([
      { quota: "clusters", scope: "*", amount: 1 },
      { quota: "vlans", scope: "dc1", amount: 1 },
      { quota: "addresses", scope: "dc1", amount: 256 },
      { quota: "servers", scope: "m1-large", amount: 4 },
      { quota: "clustersPerEnvironment", scope: "env-1", amount: 1 },
    ]);
  });

  it("charges a bucket its GiB", () => {
    expect(demandOf("bucket", { quotaGiB: 50, versioning: false }, at)).toContainEqual({
      quota: "bucketStorageGiB",
      scope: "*",
      amount: 50,
    });
  });

  it("charges a changed spec only the difference, and refunds what it no longer asks", () => {
    const before = demandOf("server", { machineClass: "m1-small" }, at);
    const after = demandOf("server", { machineClass: "m1-large" }, at);
    expect(demandDelta(before, after)).toEqual([
      { quota: "servers", scope: "m1-small", amount: -1 },
      { quota: "servers", scope: "m1-large", amount: 1 },
    ]);
    const grown = demandDelta(
      demandOf("network", { prefixLength: 28 }, at),
      demandOf("network", { prefixLength: 24 }, at),
    );
    expect(grown).toEqual([{ quota: "addresses", scope: "dc1", amount: 240 }]);
    expect(demandDelta(before, before)).toEqual([]);
  });
});
