// The generated CRDs as `kubectl explain` and `kubectl apply` will see them: every field
// described, and the zod twins of the API server's CEL rules refusing what it refuses.
import { describe, expect, it } from "vitest";
import { cidrProblem, cidrsOverlap } from "./cidr.js";
import { customResourceDefinition, KINDS, NetworkPoolSpec } from "./index.js";

type Schema = {
  description?: unknown;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
};

/** Every property of a schema, at any depth, as `spec.vlanRanges[].start`. */
function* properties(schema: Schema, path: string): Generator<[string, Schema]> {
  for (const [name, child] of Object.entries(schema.properties ?? {})) {
    const at = path ? `${path}.${name}` : name;
    yield [at, child];
    yield* properties(child, at);
  }
  if (schema.items) yield* properties(schema.items, `${path}[]`);
  if (typeof schema.additionalProperties === "object")
    yield* properties(schema.additionalProperties, `${path}{}`);
}

const openApiSchema = (kind: (typeof KINDS)[number]): Schema => {
  const crd = customResourceDefinition(kind) as {
    spec: { versions: { schema: { openAPIV3Schema: Schema } }[] };
  };
  const version = crd.spec.versions[0];
  if (!version) throw new Error(`${kind.kind}: no version`);
  return version.schema.openAPIV3Schema;
};

describe("generated CRDs", () => {
  it("describe every field, so kubectl explain never says <no description>", () => {
    const missing: string[] = [];
    let seen = 0;
    for (const kind of KINDS) {
      for (const [path, schema] of properties(openApiSchema(kind), "")) {
        seen++;
        // The API server describes ObjectMeta itself, and refuses a CRD that describes it.
        if (path === "metadata") continue;
        if (typeof schema.description !== "string" || schema.description.trim() === "")
          missing.push(`${kind.kind} ${path}`);
      }
    }
    expect(seen).toBeGreaterThan(80);
    expect(missing).toEqual([]);
  });

  it("carry the CEL rules that refuse bad prefixes and reversed ranges at apply time", () => {
    const np = KINDS.find((k) => k.kind === "NetworkPool");
    if (!np) throw new Error("no NetworkPool");
    const spec = openApiSchema(np).properties?.spec as Schema & {
      properties: Record<string, Schema & { items: Record<string, unknown> }>;
    };
    const rules = (node: unknown) =>
      (
        (node as { "x-kubernetes-validations"?: { rule: string }[] })["x-kubernetes-validations"] ??
        []
      ).map((r) => r.rule);
    expect(rules(spec.properties.prefixes?.items)).toEqual([
      "isCIDR(self)",
      "!isCIDR(self) || cidr(self).masked() == cidr(self)",
    ]);
    expect(rules(spec.properties.prefixes).join()).toContain("containsCIDR");
    expect(rules(spec.properties.vlanRanges?.items)).toEqual(["self.start <= self.end"]);
  });
});

describe("prefixes in a NetworkPool spec (what a directory of YAML is checked with)", () => {
  const issues = (prefixes: string[]) => {
    const r = NetworkPoolSpec.safeParse({ datacenter: "dc1", prefixes });
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
  };

  it("accepts IPv4 and IPv6 prefixes with no host bits set", () => {
    expect(issues(["10.64.0.0/12", "192.168.0.0/24", "fd00:64::/48"])).toEqual([]);
    expect(issues(["0.0.0.0/0", "::/0"])).toEqual([]);
  });

  it("refuses what the API server's isCIDR and cidr().masked() refuse, naming the item", () => {
    expect(issues(["10.300.0.0/33"])).toEqual([
      "prefixes.0: 10.300.0.0/33: must be a CIDR prefix such as 10.0.0.0/16: the address is not a valid IPv4 or IPv6 address",
    ]);
    expect(issues(["10.0.0.0/33"])).toEqual([
      "prefixes.0: 10.0.0.0/33: the length of an IPv4 prefix must be at most 32",
    ]);
    expect(issues(["10.0.0.0/16", "10.0.0.1/24"])).toEqual([
      "prefixes.1: 10.0.0.1/24: must not have host bits set (e.g. 10.0.0.0/16)",
    ]);
    expect(cidrProblem("fd00::1/48")).toContain("host bits");
    expect(cidrProblem("010.0.0.0/8")).toContain("not a valid");
    expect(cidrProblem("fe80::%eth0/64")).toContain("not a valid");
    expect(cidrProblem("10.0.0.0")).toContain("an address, '/', a length");
  });

  it("refuses prefixes of one pool that overlap or repeat, naming both", () => {
    expect(issues(["10.0.0.0/16", "192.168.0.0/24", "10.0.16.0/20"])).toEqual([
      "prefixes.2: 10.0.16.0/20 overlaps spec.prefixes[0] 10.0.0.0/16",
    ]);
    expect(issues(["fd00::/48", "fd00::/48"])).toEqual([
      "prefixes.1: fd00::/48 overlaps spec.prefixes[0] fd00::/48",
    ]);
    expect(cidrsOverlap("10.0.0.0/8", "::/0")).toBe(false);
    expect(cidrsOverlap("10.0.0.0/24", "10.0.1.0/24")).toBe(false);
  });
});
