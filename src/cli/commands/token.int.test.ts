// `dv token create` names the tenant (and project) by id when the running API can tell it, so the
// token keeps meaning them after their names are deleted and taken again; offline it still mints
// one, by name, and says what that means. Its lifetime stays within what the API accepts.
import { base64url } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../../../test/support/api.js";
import { runDv } from "../../../test/support/process.js";
import { freePort } from "../../dev/index.js";

let api: ApiHarness;
let acme: Seeded;
let server: string;

beforeAll(async () => {
  api = await startApi();
  acme = await seedTenant(api, "acme");
  server = await api.app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => api.close());

const claimsOf = (jwt: string): Record<string, unknown> =>
  JSON.parse(new TextDecoder().decode(base64url.decode(jwt.trim().split(".")[1] ?? ""))) as Record<
    string,
    unknown
  >;

const dv = (args: string[], env: Record<string, string> = {}) =>
  runDv(["token", "create", ...args], {
    DV_AUTH_DEV_KEY_FILE: api.keyFile,
    DV_SERVER: server,
    ...env,
  });

describe("dv token create", () => {
  it("names the tenant and project by id, as the API knows them", async () => {
    const minted = await dv(["--tenant", "acme", "--project", acme.project.name]);
    expect(minted.code, minted.stderr).toBe(0);
    expect(minted.stderr).toBe("");
    expect(claimsOf(minted.stdout)).toMatchObject({
      dv_role: "tenant-admin",
      dv_tenant: acme.tenant.id,
      dv_project: acme.project.id,
    });
    // The token works, and keeps working by id.
    const response = await api.call(minted.stdout.trim(), {
      method: "GET",
      url: `/api/v1/tenants/acme/projects/${acme.project.name}`,
    });
    expect(response.statusCode).toBe(200);
  });

  it("refuses a tenant that does not exist, saying to create it first", async () => {
    const minted = await dv(["--tenant", "nobody"]);
    expect(minted.code).toBe(4);
    expect(minted.stderr).toMatch(/tenant nobody not found.*create it first/i);
    expect(minted.stdout).toBe("");
  });

  it("mints by name when the API cannot be reached, and warns what that means", async () => {
    const offline = `http://127.0.0.1:${await freePort()}`;
    const minted = await dv(["--tenant", "acme"], { DV_SERVER: offline });
    expect(minted.code, minted.stderr).toBe(0);
    expect(claimsOf(minted.stdout).dv_tenant).toBe("acme");
    expect(minted.stderr).toMatch(
      /^dv: warning: could not look up the ids of tenant acme \(cannot reach the API.*\); the token names them by name/,
    );
  });

  it("keeps a token's lifetime within what the API accepts", async () => {
    const long = await dv(["--role", "operator", "--ttl", "2d"]);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/--ttl "2d" must be a duration from 1m to 24h/);
    const configured = await dv(["--role", "operator", "--ttl", "2d"], {
      DV_AUTH_MAX_TOKEN_LIFETIME_HOURS: "72",
    });
    expect(configured.code, configured.stderr).toBe(0);
    const claims = claimsOf(configured.stdout);
    expect(Number(claims.exp) - Number(claims.iat)).toBe(2 * 86_400);
  });
});
