// Property-based fuzzing of the public API: request bodies generated from the JSON Schemas that
// zod produced for the OpenAPI document (valid ones and mutated ones), random path parameters and
// queries. Whatever arrives, the API never answers 5xx and every error is problem+json.
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { base64url, SignJWT, UnsecuredJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../../test/support/api.js";
import { packageRoot } from "../meta/index.js";

type JsonSchema = Record<string, unknown>;
interface OpenApi {
  paths: Record<
    string,
    Record<string, { requestBody?: { content?: Record<string, { schema?: JsonSchema }> } }>
  >;
  components?: { schemas?: Record<string, JsonSchema> };
}

const document = JSON.parse(
  readFileSync(`${packageRoot()}/docs/api/openapi.json`, "utf8"),
) as OpenApi;

function resolve(schema: JsonSchema): JsonSchema {
  const ref = schema.$ref;
  if (typeof ref === "string") {
    const name = ref.split("/").pop() ?? "";
    return resolve(document.components?.schemas?.[name] ?? {});
  }
  return schema;
}

/** An arbitrary of values a JSON Schema describes, with some values just outside it. */
function arbitraryOf(input: JsonSchema, depth = 0): fc.Arbitrary<unknown> {
  const schema = resolve(input);
  const anyOf = (schema.anyOf ?? schema.oneOf) as JsonSchema[] | undefined;
  if (anyOf) return fc.oneof(...anyOf.map((s) => arbitraryOf(s, depth + 1)));
  const wrong = fc.oneof(
    fc.constant(null),
    fc.integer(),
    fc.string({ maxLength: 20 }),
    fc.boolean(),
  );
  let arb: fc.Arbitrary<unknown>;
  switch (schema.type) {
    case "string": {
      const plain = [fc.string({ maxLength: 80 }), fc.string({ unit: "grapheme", maxLength: 30 })];
      const shaped: fc.Arbitrary<unknown>[] = [];
      if (Array.isArray(schema.enum)) shaped.push(fc.constantFrom(...(schema.enum as unknown[])));
      if (typeof schema.pattern === "string") {
        try {
          shaped.push(
            fc
              .stringMatching(new RegExp(schema.pattern))
              .filter((s) => s.length > 0 && s.length < 64),
          );
        } catch {
          // a pattern fast-check cannot generate from: plain strings only
        }
      }
      arb =
        shaped.length > 0
          ? fc.oneof(
              { weight: 4, arbitrary: fc.oneof(...shaped) },
              { weight: 1, arbitrary: fc.oneof(...plain) },
            )
          : fc.oneof(...plain);
      break;
    }
    case "integer":
    case "number": {
      const min = typeof schema.minimum === "number" ? schema.minimum : -1_000_000;
      const max = typeof schema.maximum === "number" ? schema.maximum : 1_000_000;
      arb = fc.oneof(fc.integer({ min, max }), fc.integer(), fc.double());
      break;
    }
    case "boolean":
      arb = fc.boolean();
      break;
    case "array":
      arb =
        depth > 3
          ? fc.constant([])
          : fc.array(arbitraryOf((schema.items as JsonSchema) ?? {}, depth + 1), { maxLength: 4 });
      break;
    case "object": {
      const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
      const required = (schema.required ?? []) as string[];
      const record = fc.record(
        Object.fromEntries(
          Object.entries(properties).map(([k, v]) => [
            k,
            depth > 3 ? fc.constant({}) : arbitraryOf(v, depth + 1),
          ]),
        ),
        { requiredKeys: required.filter((k) => k in properties) },
      );
      const extra = fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), {
        maxKeys: 2,
      });
      arb = fc.oneof(
        { arbitrary: record, weight: 8 },
        { arbitrary: fc.tuple(record, extra).map(([r, e]) => ({ ...e, ...r })), weight: 1 },
      );
      break;
    }
    default:
      arb = fc.jsonValue({ maxDepth: 3 });
  }
  return fc.oneof({ arbitrary: arb, weight: 12 }, { arbitrary: wrong, weight: 1 });
}

let api: ApiHarness;
let own: Seeded;

beforeAll(async () => {
  api = await startApi();
  own = await seedTenant(api, "fuzzy");
});
afterAll(async () => api.close());

const operations = Object.entries(document.paths)
  .filter(([path]) => !path.endsWith("/events"))
  .flatMap(([path, methods]) =>
    Object.entries(methods)
      .filter(([m]) => ["get", "post", "patch", "delete"].includes(m))
      .map(([method, op]) => ({
        method: method.toUpperCase(),
        path,
        body: op.requestBody?.content?.["application/json"]?.schema,
      })),
  );

const segment = (own: Seeded, key: string) =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.constantFrom(
        (
          {
            tenant: own.tenant.id,
            project: own.project.id,
            environment: own.environment.id,
            name: own.network.id,
            task: own.task.id,
          } as Record<string, string>
        )[key] ?? "x",
      ),
    },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        (
          {
            tenant: "fuzzy",
            project: "fuzzy-web",
            environment: "fuzzy-prod",
            name: "fuzzy-net",
          } as Record<string, string>
        )[key] ?? "x",
      ),
    },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 70 }).map(encodeURIComponent) },
  );

function expectProblemOrSuccess(
  response: { statusCode: number; headers: Record<string, unknown>; body: string },
  label: string,
): void {
  expect(response.statusCode, `${label}: ${response.body}`).toBeLessThan(500);
  if (response.statusCode >= 400) {
    expect(response.headers["content-type"], label).toMatch(/^application\/problem\+json/);
    const problem = JSON.parse(response.body) as Record<string, unknown>;
    expect(problem.status, label).toBe(response.statusCode);
    expect(
      typeof problem.type === "string" &&
        typeof problem.title === "string" &&
        typeof problem.detail === "string",
      label,
    ).toBe(true);
  }
}

describe("fuzzing the API", () => {
  it("never answers 5xx and always problem+json for errors, whatever the body, path and query", async () => {
    const token = await api.token("tenant-admin", "fuzzy");
    const request = fc.constantFrom(...operations).chain((op) => {
      const keys = [...op.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] ?? "");
      return fc.record({
        op: fc.constant(op),
        params: fc.tuple(...keys.map((k) => segment(own, k))),
        body: op.body ? arbitraryOf(op.body) : fc.constant(undefined),
        query: fc.oneof(
          { weight: 3, arbitrary: fc.constant({}) },
          {
            weight: 1,
            arbitrary: fc.record(
              {
                limit: fc.oneof(fc.integer({ min: -5, max: 600 }).map(String), fc.string()),
                cursor: fc.string(),
                labelSelector: fc.string(),
              },
              { requiredKeys: [] },
            ),
          },
        ),
        ifMatch: fc.oneof(fc.constant('"1"'), fc.string({ maxLength: 12 })),
      });
    });
    await fc.assert(
      fc.asyncProperty(request, async ({ op, params, body, query, ifMatch }) => {
        let i = 0;
        const url = `/api/v1${op.path.replace(/\{\w+\}/g, () => String(params[i++]))}`;
        const response = await api.call(token, {
          method: op.method,
          url,
          query: query,
          headers: { "if-match": ifMatch },
          ...(body === undefined
            ? {}
            : {
                payload: JSON.stringify(body),
                headers: { "content-type": "application/json", "if-match": ifMatch },
              }),
        });
        expectProblemOrSuccess(response, `${op.method} ${url}`);
      }),
      { numRuns: 600 },
    );
  });

  it("answers every malformed or forged token with exactly 401", async () => {
    const good = await api.token("tenant-admin", "fuzzy");
    const [header, payload, signature] = good.split(".") as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<
      string,
      unknown
    >;
    const none = new UnsecuredJWT({ ...claims, dv_role: "operator" }).encode();
    const hs256 = await new SignJWT({ ...claims, dv_role: "operator" })
      .setProtectedHeader({ alg: "HS256" })
      .sign(new TextEncoder().encode("a-shared-secret-nobody-configured"));
    const tokens = [
      none,
      hs256,
      `${header}.${base64url.encode(JSON.stringify({ ...claims, dv_tenant: "someone-else" }))}.${signature}`,
      `${header}.${payload}.${signature.slice(0, -4)}AAAA`,
      `${header}.${payload}`,
      "",
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.constantFrom(...tokens), fc.string({ maxLength: 300 })),
        async (token) => {
          const response = await api.call(undefined, {
            method: "GET",
            url: `/api/v1/tenants/fuzzy`,
            headers: { authorization: `Bearer ${token}` },
          });
          expect(response.statusCode).toBe(401);
          expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
          expect(response.body).not.toContain(own.tenant.id);
        },
      ),
      { numRuns: 200 },
    );
  });
});
