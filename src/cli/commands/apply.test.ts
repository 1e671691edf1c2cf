import { describe, expect, it } from "vitest";
import { CliError } from "../errors.js";
import { checkDocument, mergePatch, relabel } from "./apply.js";
import { changeOf, sinceTime } from "./audit.js";

/** The one line `dv` would print for `fn`'s refusal. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return (err as CliError).message;
  }
  throw new Error("not refused");
}

describe("dv apply documents", () => {
  it("takes an object as dv get -o yaml prints it, with the spec's defaults filled in", () => {
    const desired = checkDocument({
      kind: "Network",
      metadata: {
        id: "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f",
        name: "web",
        tenantId: "t-id",
        projectId: "p-id",
        environmentId: "e-id",
        version: 3,
        labels: { team: "payments" },
      },
      spec: {},
      status: { conditions: [] },
    });
    expect(desired).toMatchObject({
      name: "web",
      scope: { tenant: "t-id", project: "p-id", environment: "e-id" },
      labels: { team: "payments" },
      spec: { prefixLength: 24 },
    });
    expect(desired.kind.singular).toBe("network");
    // Without a spec, the live one is left alone; names over ids for the scope.
    expect(
      checkDocument({
        kind: "environment",
        metadata: { name: "prod", tenant: "acme", tenantId: "t-id", project: "shop" },
      }),
    ).toMatchObject({ scope: { tenant: "acme", project: "shop" }, spec: undefined });
  });

  it("names the field at fault and what is allowed there, in one line", () => {
    expect(
      refusal(() =>
        checkDocument({ kind: "Network", metadata: { name: "web" }, spec: { colour: "blue" } }),
      ),
    ).toBe('spec: unknown field "colour"; allowed: prefixLength, networkPool');
    expect(
      refusal(() =>
        checkDocument({ kind: "Network", metadata: { name: "web" }, spec: { prefixLength: 99 } }),
      ),
    ).toMatch(/^spec\.prefixLength: .*29/);
    expect(
      refusal(() => checkDocument({ apiVersion: "v1", kind: "Network", metadata: { name: "a" } })),
    ).toBe('unknown field "apiVersion"; allowed: kind, metadata, spec, status');
    expect(refusal(() => checkDocument({ kind: "Flavour", metadata: { name: "a" } }))).toMatch(
      /^kind: unknown kind "flavour"; one of: tenant, project, environment, network/,
    );
    expect(
      refusal(() => checkDocument({ kind: "Network", metadata: { name: "Web Server" } })),
    ).toMatch(/^metadata\.name: must be a DNS label/);
    expect(
      refusal(() =>
        checkDocument({ kind: "Network", metadata: { name: "web", labels: { team: 1 } } }),
      ),
    ).toMatch(/^metadata\.labels\.team: /);
    expect(refusal(() => checkDocument("kind: Network"))).toBe(
      "not an object with kind, metadata and spec",
    );
  });
});

describe("dv patch", () => {
  it("merges as RFC 7386 says: null removes, objects merge, the rest replaces", () => {
    expect(
      mergePatch(
        { metadata: { labels: { a: "1", b: "2" } }, spec: { prefixLength: 26, pool: "x" } },
        { metadata: { labels: { a: null, c: "3" } }, spec: { prefixLength: 25 } },
      ),
    ).toEqual({ metadata: { labels: { b: "2", c: "3" } }, spec: { prefixLength: 25, pool: "x" } });
    expect(mergePatch({ a: [1, 2] }, { a: [3] })).toEqual({ a: [3] });
  });
});

describe("dv label", () => {
  it("sets and removes, and changes a value only with --overwrite", () => {
    expect(relabel({ team: "a", tier: "web" }, ["zone=x", "tier-"], false)).toEqual({
      team: "a",
      zone: "x",
    });
    expect(relabel({ team: "a" }, ["team=a"], false)).toEqual({ team: "a" });
    expect(refusal(() => relabel({ team: "a" }, ["team=b"], false))).toBe(
      'label "team" already has the value "a": pass --overwrite to change it',
    );
    expect(relabel({ team: "a" }, ["team=b"], true)).toEqual({ team: "b" });
    expect(refusal(() => relabel({}, ["team"], false))).toMatch(/^"team" is neither key=value/);
  });
});

describe("dv audit", () => {
  it("says what a record changed in a line", () => {
    expect(
      changeOf({
        before: { labels: { team: "a" }, spec: { prefixLength: 26 } },
        after: { labels: { tier: "web" }, spec: { prefixLength: 25 } },
      }),
    ).toBe('labels.team: -"a", spec.prefixLength: 26→25, labels.tier: +"web"');
    expect(changeOf({ before: null, after: null })).toBe("");
  });

  it("reads --since as a time that long ago, and refuses other shapes", () => {
    const now = Date.parse("2026-12-01T12:00:00Z");
    expect(sinceTime("90s", now)).toBe("2026-12-01T11:58:30.000Z");
    expect(sinceTime("2h", now)).toBe("2026-12-01T10:00:00.000Z");
    expect(refusal(() => sinceTime("2 hours", now))).toMatch(/a duration like 90s/);
  });
});
