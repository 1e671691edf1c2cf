import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url, generateKeyPair, SignJWT, UnsecuredJWT } from "jose";
import { beforeAll, describe, expect, it, vi } from "vitest";
import {
  AuthenticationError,
  createTokenVerifier,
  type DevKey,
  loadDevKey,
  mintToken,
  type TokenVerifier,
} from "./index.js";

const settings = (devKeyFile: string) => ({
  issuer: "https://issuer.test",
  audience: "dataverket-api",
  algorithms: ["ES256"],
  devKeyFile,
});

let key: DevKey;
let verifier: TokenVerifier;
let keyFile: string;

beforeAll(async () => {
  keyFile = join(mkdtempSync(join(tmpdir(), "dv-auth-")), "key.json");
  verifier = await createTokenVerifier(settings(keyFile), true);
  key = await loadDevKey(keyFile, false);
});

const mint = (over: Partial<Parameters<typeof mintToken>[0]> = {}) =>
  mintToken({
    key,
    issuer: "https://issuer.test",
    audience: "dataverket-api",
    subject: "alice",
    role: "tenant-admin",
    tenant: "acme",
    ttlSeconds: 600,
    ...over,
  });

async function failure(authorization: string | undefined): Promise<string> {
  try {
    await verifier.verify(authorization);
  } catch (err) {
    expect(err).toBeInstanceOf(AuthenticationError);
    return (err as AuthenticationError).failure;
  }
  throw new Error("the token was accepted");
}

describe("token verification", () => {
  it("accepts a token it minted and returns who calls, with which role and tenant", async () => {
    const now = new Date("2026-12-01T12:00:00.900Z");
    const iat = Date.parse("2026-12-01T12:00:00Z") / 1000;
    vi.useFakeTimers({ now, toFake: ["Date"] });
    try {
      expect(await verifier.verify(`Bearer ${await mint({ project: "web", now })}`)).toEqual({
        subject: "alice",
        role: "tenant-admin",
        tenant: "acme",
        project: "web",
        issuedAt: iat,
      });
      expect(
        await verifier.verify(`Bearer ${await mint({ role: "operator", tenant: undefined, now })}`),
      ).toEqual({ subject: "alice", role: "operator", issuedAt: iat });
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses a missing or malformed header", async () => {
    expect(await failure(undefined)).toBe("missing");
    expect(await failure("Basic YWxpY2U6cHc=")).toBe("malformed");
    expect(await failure("Bearer not-a-jwt")).toBe("malformed");
  });

  it("refuses alg none", async () => {
    const unsecured = new UnsecuredJWT({ dv_role: "operator" })
      .setIssuer("https://issuer.test")
      .setAudience("dataverket-api")
      .setSubject("mallory")
      .setIssuedAt()
      .setExpirationTime("10m")
      .encode();
    expect(await failure(`Bearer ${unsecured}`)).toMatch(/algorithm|malformed/);
  });

  it("refuses an algorithm that is not pinned (HS256 with the public key as secret, ES384)", async () => {
    const hs = await new SignJWT({ dv_role: "operator" })
      .setProtectedHeader({ alg: "HS256", kid: key.kid })
      .setIssuer("https://issuer.test")
      .setAudience("dataverket-api")
      .setSubject("mallory")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(new TextEncoder().encode(JSON.stringify(key.publicJwk)));
    expect(await failure(`Bearer ${hs}`)).toBe("algorithm");
    const other = await generateKeyPair("ES384");
    const es384 = await new SignJWT({ dv_role: "operator" })
      .setProtectedHeader({ alg: "ES384", kid: key.kid })
      .setIssuer("https://issuer.test")
      .setAudience("dataverket-api")
      .setSubject("mallory")
      .setIssuedAt()
      .setExpirationTime("10m")
      .sign(other.privateKey);
    expect(await failure(`Bearer ${es384}`)).toBe("algorithm");
  });

  it("refuses the wrong issuer or audience", async () => {
    expect(await failure(`Bearer ${await mint({ issuer: "https://evil.test" })}`)).toBe(
      "wrong_claims",
    );
    expect(await failure(`Bearer ${await mint({ audience: "another-api" })}`)).toBe("wrong_claims");
  });

  it("remembers a verified token for a minute at most, and never past its expiry", async () => {
    vi.useFakeTimers({ now: new Date("2026-12-01T12:00:00Z"), toFake: ["Date"] });
    try {
      const token = `Bearer ${await mint({ now: new Date(), ttlSeconds: 90 })}`;
      const first = await verifier.verify(token);
      expect(await verifier.verify(token)).toEqual(first);
      // Altered by one character, the same token is checked afresh and refused.
      const flipped = token.at(-10) === "A" ? "B" : "A";
      expect(await failure(`${token.slice(0, -10)}${flipped}${token.slice(-9)}`)).toBe(
        "invalid_signature",
      );
      // Past its expiry (and jose's 30 s tolerance), it is refused even though it was accepted.
      vi.setSystemTime(new Date("2026-12-01T12:02:30Z"));
      expect(await failure(token)).toBe("expired");
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses an expired token", async () => {
    expect(
      await failure(
        `Bearer ${await mint({ now: new Date(Date.now() - 3_600_000), ttlSeconds: 60 })}`,
      ),
    ).toBe("expired");
  });

  it("refuses a token signed by a key it does not know", async () => {
    const stranger = await loadDevKey(
      join(mkdtempSync(join(tmpdir(), "dv-auth-")), "other.json"),
      true,
    );
    expect(await failure(`Bearer ${await mint({ key: stranger })}`)).toBe("unknown_key");
  });

  it("refuses a tampered token", async () => {
    const [header, payload, signature] = (await mint()).split(".") as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<
      string,
      unknown
    >;
    const forged = base64url.encode(JSON.stringify({ ...claims, dv_role: "operator" }));
    expect(await failure(`Bearer ${header}.${forged}.${signature}`)).toBe("invalid_signature");
    const flipped = signature.slice(0, -2) + (signature.endsWith("AA") ? "BB" : "AA");
    expect(await failure(`Bearer ${header}.${payload}.${flipped}`)).toBe("invalid_signature");
  });

  it("refuses a token issued in the future, beyond 30 s of clock skew, saying so", async () => {
    const future = await mint({ now: new Date(Date.now() + 120_000) });
    await expect(verifier.verify(`Bearer ${future}`)).rejects.toThrow(
      /the token was issued in the future \("iat" \S+\); check the issuer's clock/,
    );
    // Within the tolerance, a slightly fast issuer's token is fine.
    const skewed = await mint({ now: new Date(Date.now() + 10_000) });
    expect((await verifier.verify(`Bearer ${skewed}`)).subject).toBe("alice");
  });

  it("refuses a token valid for longer than the configured lifetime (24 h by default)", async () => {
    const long = await mint({ ttlSeconds: 24 * 3600 + 60 });
    await expect(verifier.verify(`Bearer ${long}`)).rejects.toThrow(
      'the token is valid for 24.0 h ("exp" minus "iat"), longer than the 24 h this API accepts',
    );
    expect(await verifier.verify(`Bearer ${await mint({ ttlSeconds: 24 * 3600 })}`)).toMatchObject({
      subject: "alice",
    });
    const strict = await createTokenVerifier(
      { ...settings(keyFile), maxTokenLifetimeHours: 1 },
      true,
    );
    await expect(strict.verify(`Bearer ${await mint({ ttlSeconds: 7200 })}`)).rejects.toThrow(
      "longer than the 1 h this API accepts",
    );
  });

  it("refuses a subject with control characters, and a tenant or project that is no id or name", async () => {
    expect(await failure(`Bearer ${await mint({ subject: "a\u0000b" })}`)).toBe("wrong_claims");
    await expect(verifier.verify(`Bearer ${await mint({ subject: "a\nb" })}`)).rejects.toThrow(
      'the token\'s "sub" claim is missing or not valid',
    );
    await expect(verifier.verify(`Bearer ${await mint({ tenant: "a\u0000b" })}`)).rejects.toThrow(
      'the token\'s "dv_tenant" claim is missing or not valid',
    );
    await expect(verifier.verify(`Bearer ${await mint({ project: "Web Shop" })}`)).rejects.toThrow(
      'the token\'s "dv_project" claim is missing or not valid',
    );
  });

  it("refuses a tenant role without a tenant, or an unknown role", async () => {
    expect(await failure(`Bearer ${await mint({ tenant: undefined })}`)).toBe("wrong_claims");
    expect(await failure(`Bearer ${await mint({ role: "root" as never })}`)).toBe("wrong_claims");
  });

  it("does not create a signing key outside dv dev", async () => {
    const missing = join(mkdtempSync(join(tmpdir(), "dv-auth-")), "none.json");
    await expect(createTokenVerifier(settings(missing), false)).rejects.toThrow(
      "DV_AUTH_JWKS_URL or DV_AUTH_PUBLIC_KEY_FILE",
    );
  });
});
