// The OpenAPI document says what the server does (issue 18): the media type of errors, required
// headers, constraints zod refinements add, and every status the HTTP layer can answer.
import type { OpenAPIV3_1 } from "openapi-types";
import { beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../meta/index.js";
import { readPlatformDirectory } from "../platform-config/index.js";
import { buildOpenApiDocument } from "./openapi-document.js";

type Operation = OpenAPIV3_1.OperationObject;
type Schema = Record<string, unknown>;

let document: OpenAPIV3_1.Document;
let operations: { label: string; method: string; path: string; op: Operation }[];

beforeAll(async () => {
  document = (await buildOpenApiDocument()) as OpenAPIV3_1.Document;
  operations = Object.entries(document.paths ?? {}).flatMap(([path, methods]) =>
    Object.entries(methods ?? {}).map(([method, op]) => ({
      label: `${method.toUpperCase()} ${path}`,
      method,
      path,
      op: op as Operation,
    })),
  );
});

const component = (name: string): Schema =>
  (document.components?.schemas?.[name] ?? {}) as unknown as Schema;

const resolve = (schema: unknown): Schema => {
  const ref = (schema as { $ref?: string } | undefined)?.$ref;
  return ref ? component(ref.split("/").pop() ?? "") : ((schema ?? {}) as Schema);
};

const statuses = (op: Operation) => Object.keys(op.responses ?? {}).map(Number);

const parameters = (op: Operation) => (op.parameters ?? []) as OpenAPIV3_1.ParameterObject[];

describe("the OpenAPI document", () => {
  it("declares every error response as application/problem+json, with the Problem schema", () => {
    const wrong: string[] = [];
    for (const { label, op } of operations) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        if (Number(status) < 400) continue;
        const content = (response as OpenAPIV3_1.ResponseObject).content ?? {};
        const schema = content["application/problem+json"]?.schema as { $ref?: string } | undefined;
        if (
          Object.keys(content).join() !== "application/problem+json" ||
          !schema?.$ref?.endsWith("/Problem")
        )
          wrong.push(`${label} ${status}: ${Object.keys(content).join(", ")}`);
      }
    }
    expect(operations.length).toBeGreaterThan(40);
    expect(wrong).toEqual([]);
  });

  it("requires If-Match wherever it is taken, and lists the 428 its absence gets", () => {
    const ifMatch = operations.filter(({ op }) =>
      parameters(op).some((p) => p.in === "header" && p.name === "if-match"),
    );
    expect(ifMatch.map((o) => o.method).sort()).toEqual(
      expect.arrayContaining(["delete", "patch"]),
    );
    for (const { label, op } of ifMatch) {
      const header = parameters(op).find((p) => p.name === "if-match");
      expect(header?.required, label).toBe(true);
      expect(statuses(op), label).toContain(428);
    }
    // Every PATCH and DELETE takes it.
    expect(
      operations.filter((o) => ["patch", "delete"].includes(o.method) && !ifMatch.includes(o)),
    ).toEqual([]);
  });

  it("says that a PATCH body names at least one field, as the server requires", () => {
    const patches = operations.filter((o) => o.method === "patch");
    expect(patches.length).toBeGreaterThan(5);
    for (const { label, op } of patches) {
      const body = op.requestBody as OpenAPIV3_1.RequestBodyObject;
      const schema = resolve(body.content["application/json"]?.schema);
      const required = (schema.required as string[] | undefined) ?? [];
      expect(required.length > 0 || schema.minProperties === 1, label).toBe(true);
    }
    expect(component("TenancyPatchInput").minProperties).toBe(1);
    expect(component("NetworkPatchInput").minProperties).toBe(1);
  });

  it("limits labels to 64, as the server does", () => {
    const labels = (component("TenantCreateInput").properties as Record<string, Schema>).labels;
    expect(labels?.maxProperties).toBe(64);
  });

  it("lists 400 on every operation with a path parameter, a query or headers, and 413 and 415 where a body can be sent", () => {
    for (const { label, method, op } of operations) {
      if (parameters(op).length > 0 || op.requestBody) expect(statuses(op), label).toContain(400);
      // A body can be sent with these, and is read (and refused when too large or not JSON).
      if (op.requestBody || ["post", "put", "patch", "delete"].includes(method))
        expect(statuses(op), label).toEqual(expect.arrayContaining([413, 415]));
      // What the HTTP layer answers whatever the route.
      expect(statuses(op), label).toEqual(expect.arrayContaining([401, 429, 431, 503]));
    }
    const getTenant = operations.find((o) => o.label === "GET /tenants/{tenant}");
    expect(getTenant && statuses(getTenant.op)).toContain(400);
  });

  it("lets a body that defaults to {} be left out, and keeps the others required", () => {
    const cancel = operations.find((o) => o.label === "POST /tenants/{tenant}/tasks/{task}/cancel");
    expect((cancel?.op.requestBody as OpenAPIV3_1.RequestBodyObject).required).toBe(false);
    const create = operations.find((o) => o.label === "POST /tenants");
    expect((create?.op.requestBody as OpenAPIV3_1.RequestBodyObject).required).toBe(true);
  });

  it("documents a task's event stream as text/event-stream events with JSON data", () => {
    const events = operations.find((o) => o.label === "GET /tenants/{tenant}/tasks/{task}/events");
    const ok = events?.op.responses?.["200"] as OpenAPIV3_1.ResponseObject;
    expect(Object.keys(ok.content ?? {})).toEqual(["text/event-stream"]);
    const event = resolve(ok.content?.["text/event-stream"]?.schema);
    expect(
      (event.oneOf as Schema[]).map((e) => (e.properties as Record<string, Schema>).event?.const),
    ).toEqual(["task", "history", "end", "error"]);
  });

  it("names in its examples only the datacenters, machine classes and pools config/platform has", async () => {
    const sample = await readPlatformDirectory(`${packageRoot()}/config/platform`);
    const has = (kind: string) => sample.filter((d) => d.kind === kind).map((d) => d.name);
    // A field or parameter of these names names an object of this kind.
    const KIND_OF: Record<string, string> = {
      datacenter: "Datacenter",
      machineClass: "MachineClass",
      networkPool: "NetworkPool",
      serverPool: "ServerPool",
    };
    const found: { where: string; kind: string; name: unknown }[] = [];
    // Every example of a field or parameter of those names, and those names inside examples.
    const inExample = (value: unknown, where: string): void => {
      if (typeof value !== "object" || value === null) return;
      for (const [key, v] of Object.entries(value)) {
        const kind = KIND_OF[key];
        if (kind) found.push({ where: `${where}.${key}`, kind, name: v });
        inExample(v, `${where}.${key}`);
      }
    };
    const walk = (node: unknown, where: string): void => {
      if (typeof node !== "object" || node === null) return;
      const n = node as Record<string, unknown>;
      const properties = n.properties as Record<string, Schema> | undefined;
      for (const [key, property] of Object.entries(properties ?? {})) {
        const kind = KIND_OF[key];
        if (kind && property.example !== undefined)
          found.push({ where: `${where}.${key}`, kind, name: property.example });
      }
      const p = n as { in?: unknown; name?: unknown; schema?: Schema };
      if (typeof p.in === "string" && typeof p.name === "string" && KIND_OF[p.name]) {
        found.push({ where, kind: KIND_OF[p.name] ?? "", name: p.schema?.example });
      }
      if (n.example !== undefined) inExample(n.example, `${where}.example`);
      for (const [key, child] of Object.entries(n)) walk(child, `${where}/${key}`);
    };
    walk(document, "#");
    const wrong = found.filter((f) => typeof f.name !== "string" || !has(f.kind).includes(f.name));
    expect(wrong).toEqual([]);
    // What a client copies from the document to create things: each carries an example.
    const named = new Set(found.map((f) => f.where.replace(/^.*\/schemas\//, "")));
    for (const field of [
      "EnvironmentCreate.datacenter",
      "NetworkSpec.networkPool",
      "ServerSpec.machineClass",
      "ClusterSpec.machineClass",
    ])
      expect(named, field).toContain(field);
    expect(found.filter((f) => f.where.includes("/paths/")).length).toBeGreaterThanOrEqual(4);
  });
});
