// The HTTP layer every route shares (src/api/protocol.ts), on a real PostgreSQL: unknown methods,
// media types, missing and malformed bodies, and If-Match — each answered with the problem the
// OpenAPI document lists for it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ApiHarness,
  expectProblem as problem,
  type Seeded,
  seedTenant,
  startApi,
} from "../../test/support/api.js";

let api: ApiHarness;
let acme: Seeded;
let operator: string;

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator");
  acme = await seedTenant(api, "acme");
});
afterAll(async () => api.close());

/** A new network of acme's, and the task that builds it. */
async function newTask(name: string): Promise<string> {
  const r = await api.call(acme.adminToken, {
    method: "POST",
    url: `/api/v1/tenants/acme/projects/acme-web/environments/acme-prod/networks`,
    payload: { name, spec: {} },
  });
  expect(r.statusCode, r.body).toBe(202);
  return r.json<{ id: string }>().id;
}

describe("methods", () => {
  it("answers a method the path does not have with 405 and the methods it has", async () => {
    const response = await api.call(operator, { method: "PUT", url: "/api/v1/tenants/acme" });
    expect(problem(response, 405, "method-not-allowed").detail).toBe(
      "/api/v1/tenants/acme answers GET, HEAD, PATCH, DELETE, not PUT",
    );
    expect(response.headers.allow).toBe("GET, HEAD, PATCH, DELETE");
  });

  it("answers 405 before reading the body, whatever it is", async () => {
    const options = await api.call(operator, { method: "OPTIONS", url: "/api/v1/tenants" });
    expect(options.headers.allow).toBe("GET, HEAD, POST");
    problem(options, 405, "method-not-allowed");
    const put = await api.call(operator, {
      method: "PUT",
      url: "/api/v1/tenants/acme",
      headers: { "content-type": "text/plain" },
      payload: "not json",
    });
    problem(put, 405, "method-not-allowed");
  });

  it("still answers 404 for a path that has no route at all", async () => {
    problem(
      await api.call(operator, { method: "PUT", url: "/api/v1/nothing-here" }),
      404,
      "not-found",
    );
  });
});

describe("bodies", () => {
  it("refuses a body that is not JSON with 415, not a schema 400", async () => {
    const response = await api.call(operator, {
      method: "POST",
      url: "/api/v1/tenants",
      headers: { "content-type": "text/plain" },
      payload: "name=plain",
    });
    expect(problem(response, 415, "unsupported-media-type").detail).toBe(
      "the body must be application/json",
    );
  });

  it("says where and what is wrong with malformed JSON", async () => {
    const response = await api.call(operator, {
      method: "POST",
      url: "/api/v1/tenants",
      headers: { "content-type": "application/json" },
      payload: '{"name": "half',
    });
    const body = problem(response, 400, "invalid-request");
    expect(body.errors).toEqual([
      { pointer: "/body", message: expect.stringMatching(/^not valid JSON: /) as string },
    ]);
  });

  it("refuses a JSON null body, which is no object and no missing body", async () => {
    const task = await newTask("nulled");
    const response = await api.call(acme.adminToken, {
      method: "POST",
      url: `/api/v1/tenants/acme/tasks/${task}/cancel`,
      headers: { "content-type": "application/json" },
      payload: "null",
    });
    expect(problem(response, 400, "invalid-request").errors).toEqual([
      { pointer: "/body", message: "the body is JSON null; send an object" },
    ]);
  });

  it("cancels a task without a body, with or without a Content-Type: the body defaults to {}", async () => {
    for (const [name, headers] of [
      ["bare", {}],
      ["typed", { "content-type": "application/json" }],
    ] as const) {
      const task = await newTask(`cancel-${name}`);
      const response = await api.call(acme.adminToken, {
        method: "POST",
        url: `/api/v1/tenants/acme/tasks/${task}/cancel`,
        headers,
      });
      expect(response.statusCode, response.body).toBe(200);
      expect(response.json()).toMatchObject({
        id: task,
        state: "cancelled",
        reason: "cancelled by request",
      });
    }
  });

  it("still requires a body where the schema has no default, pointing at /body", async () => {
    const response = await api.call(operator, { method: "POST", url: "/api/v1/tenants" });
    expect(problem(response, 400, "invalid-request").errors).toEqual([
      { pointer: "/body", message: expect.stringContaining("expected object") as string },
    ]);
  });
});

describe("If-Match and parameters", () => {
  it("answers a missing If-Match with 428 before judging the body", async () => {
    const response = await api.call(operator, {
      method: "PATCH",
      url: "/api/v1/tenants/acme",
      payload: {},
    });
    problem(response, 428, "precondition-required");
  });

  it("refuses a PATCH that names no field, as the document's minProperties says", async () => {
    const response = await api.call(operator, {
      method: "PATCH",
      url: "/api/v1/tenants/acme",
      headers: { "if-match": '"1"' },
      payload: {},
    });
    expect(problem(response, 400, "invalid-request").errors).toEqual([
      { pointer: "/body", message: "name at least one field to change" },
    ]);
  });

  it("refuses an If-Match that is not one of our ETags with 400 at /headers/if-match", async () => {
    const response = await api.call(operator, {
      method: "DELETE",
      url: "/api/v1/tenants/acme",
      headers: { "if-match": "*" },
    });
    expect(problem(response, 400, "invalid-request").errors).toEqual([
      { pointer: "/headers/if-match", message: expect.stringContaining("ETag") as string },
    ]);
  });

  it("answers a path parameter that is no id or name with 400 (documented on every get)", async () => {
    const response = await api.call(operator, { method: "GET", url: "/api/v1/tenants/%C2%82" });
    expect(problem(response, 400, "invalid-request").errors).toEqual([
      { pointer: "/params/tenant", message: "must be an id or a name" },
    ]);
  });
});
