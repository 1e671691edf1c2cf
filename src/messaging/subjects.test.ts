import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  buildSubject,
  parseSubject,
  SERVICES,
  siteCommandFilter,
  siteSubject,
  SubjectError,
  type SubjectParts,
} from "./index.js";

const tokenArb = fc.stringMatching(/^[a-z][a-z0-9_]{0,15}$/);
const serviceArb = fc.constantFrom(...SERVICES);
const partsArb: fc.Arbitrary<SubjectParts> = fc.oneof(
  fc.record({ family: fc.constant("cmd" as const), service: serviceArb, action: tokenArb }),
  fc.record({
    family: fc.constant("evt" as const),
    service: serviceArb,
    entity: tokenArb,
    verb: tokenArb,
  }),
  fc.record({ family: fc.constant("task" as const), verb: tokenArb }),
  fc.record({ family: fc.constant("rpc" as const), service: serviceArb, operation: tokenArb }),
);

describe("subjects", () => {
  it("builds the seed's examples", () => {
    expect(buildSubject({ family: "cmd", service: "maskin", action: "provision" })).toBe(
      "dv.maskin.cmd.provision",
    );
    expect(
      buildSubject({ family: "evt", service: "maskin", entity: "server", verb: "provisioned" }),
    ).toBe("dv.maskin.evt.server.provisioned");
    expect(buildSubject({ family: "task", verb: "updated" })).toBe("dv.task.evt.updated");
    expect(
      buildSubject({ family: "rpc", service: "identitet", operation: "introspect_token" }),
    ).toBe("dv.rpc.identitet.introspect_token");
  });

  it("parses every built subject back to the same parts", () => {
    fc.assert(
      fc.property(partsArb, (parts) => {
        expect(parseSubject(buildSubject(parts))).toEqual(parts);
      }),
    );
  });

  it("parses no malformed subject", () => {
    const malformed = fc.oneof(
      fc.string(),
      fc.array(fc.oneof(tokenArb, fc.string()), { maxLength: 7 }).map((parts) => parts.join(".")),
      fc
        .array(
          fc.oneof(tokenArb, fc.constantFrom("dv", "cmd", "evt", "task", "rpc", ...SERVICES)),
          { maxLength: 7 },
        )
        .map((p) => p.join(".")),
    );
    fc.assert(
      fc.property(malformed, (subject) => {
        const parsed = parseSubject(subject);
        // Whatever parses is well-formed: building it gives the same subject back.
        if (parsed) expect(buildSubject(parsed)).toBe(subject);
      }),
    );
    for (const bad of [
      "dv.unknown.cmd.x",
      "dv.nett.cmd",
      "dv.nett.cmd.a.b",
      "dv.nett.evt.network",
      "nats.nett.cmd.x",
      "dv.Nett.cmd.x",
      "dv.nett.cmd.",
      "dv.task.evt",
      "dv.rpc.nett",
      "dv.nett.rpc.x",
    ]) {
      expect(parseSubject(bad), bad).toBeUndefined();
    }
  });

  it("refuses to build with an unknown service or a bad token", () => {
    expect(() => buildSubject({ family: "cmd", service: "billing" as never, action: "x" })).toThrow(
      SubjectError,
    );
    expect(() => buildSubject({ family: "cmd", service: "nett", action: "Apply" })).toThrow(
      SubjectError,
    );
    expect(() => buildSubject({ family: "task", verb: "a.b" })).toThrow(SubjectError);
  });

  it("sends a command for another site on that site's coordination subject, and nothing else", () => {
    expect(siteSubject("dv.nett.cmd.apply", "dc2")).toBe("dv.site.dc2.nett.cmd.apply");
    // The site's command stream takes it: one token per wildcard.
    expect(siteCommandFilter("dc2")).toBe("dv.site.dc2.*.cmd.*");
    // Events, task events and RPC stay in their site.
    expect(siteSubject("dv.nett.evt.network.applied", "dc2")).toBeUndefined();
    expect(siteSubject("dv.task.evt.created", "dc2")).toBeUndefined();
    expect(siteSubject("dv.rpc.identitet.introspect_token", "dc2")).toBeUndefined();
  });
});
