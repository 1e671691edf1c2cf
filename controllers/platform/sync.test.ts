// What a platform object refused by its schema says, as `dv dev` (a directory, no API server to
// refuse it at apply time) logs it and a cluster's controller would write it: the field, in the
// API server's own notation, and why.
import { describe, expect, it } from "vitest";
import { PlatformSync, type PlatformSyncStores } from "./sync.js";

// The schema refuses before any store is touched, so none is needed.
const sync = new PlatformSync({} as PlatformSyncStores);

const pool = (spec: Record<string, unknown>) =>
  sync.apply({ kind: "NetworkPool", name: "dc1-tenant", generation: 1, spec });

describe("PlatformSync refusing a spec", () => {
  it("names each bad prefix or range as kubectl would: spec.prefixes[1], spec.vlanRanges[0].start", async () => {
    expect(
      await pool({
        datacenter: "dc1",
        vlanRanges: [{ start: 300, end: 200 }],
        prefixes: ["10.64.0.0/12", "10.300.0.0/33"],
      }),
    ).toEqual({
      ok: false,
      reason: "InvalidSpec",
      retry: false,
      message:
        "spec.vlanRanges[0].start: start must not be above end; " +
        "spec.prefixes[1]: 10.300.0.0/33: must be a CIDR prefix such as 10.0.0.0/16: the address is not a valid IPv4 or IPv6 address",
    });
    expect(await pool({ datacenter: "dc1", prefixes: ["10.64.0.0/12", "10.65.0.0/16"] })).toEqual(
      expect.objectContaining({
        reason: "InvalidSpec",
        message: "spec.prefixes[1]: 10.65.0.0/16 overlaps spec.prefixes[0] 10.64.0.0/12",
      }),
    );
  });
});
