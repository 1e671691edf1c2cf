import { readFileSync } from "node:fs";
import {
  type CryptoKey,
  createLocalJWKSet,
  createRemoteJWKSet,
  importSPKI,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
  SignJWT,
} from "jose";
import { z } from "zod";
import { AuthConfigError, AuthenticationError, type AuthFailure } from "./errors.js";
import { type DevKey, loadDevKey } from "./keys.js";
import { type Principal, ROLES, type Role } from "./principal.js";

/** What a verifier checks tokens against. */
export interface AuthSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: readonly string[];
  readonly jwksUrl?: string | undefined;
  readonly publicKeyFile?: string | undefined;
  readonly devKeyFile: string;
  /**
   * The longest lifetime (`exp` − `iat`) a token may have, in hours; a longer-lived one is
   * refused. Default {@link DEFAULT_MAX_TOKEN_LIFETIME_HOURS}.
   */
  readonly maxTokenLifetimeHours?: number | undefined;
}

/** The default of {@link AuthSettings.maxTokenLifetimeHours}: one day. */
export const DEFAULT_MAX_TOKEN_LIFETIME_HOURS = 24;

/** Seconds a token's `iat` may lie in the future, or its `exp` in the past (clock skew). */
const CLOCK_TOLERANCE_SECONDS = 30;

/** Verifies bearer tokens. */
export interface TokenVerifier {
  /** Where keys come from, for logs: `jwks https://…`, `public key file …`, `development key …`. */
  readonly keySource: string;
  /**
   * Verifies the `Authorization` header's bearer token.
   *
   * @throws {AuthenticationError} saying what is wrong.
   */
  verify(authorization: string | undefined): Promise<Principal>;
  /**
   * The principal of a token this verifier accepted less than a minute ago (and not past its
   * expiry), without any cryptography; undefined for any other header. Lets a caller charge an
   * unknown token to a budget before its signature is checked.
   */
  known(authorization: string | undefined): Principal | undefined;
}

// A subject is written as the actor of every change: printable text only (PostgreSQL refuses NUL
// in text, and control characters have no place in a name shown in audit trails and logs).
const CONTROL_OR_LONE_SURROGATE = /[\p{Cc}\p{Cs}]/u;
// A tenant or project is named by its id or its name (a DNS label), nothing else.
const REF =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)$/;

const claims = z.object({
  sub: z
    .string()
    .min(1)
    .max(256)
    .refine((s) => !CONTROL_OR_LONE_SURROGATE.test(s)),
  dv_role: z.enum(ROLES),
  dv_tenant: z.string().regex(REF).optional(),
  dv_project: z.string().regex(REF).optional(),
  iat: z.number(),
  exp: z.number(),
});

const JOSE_FAILURES: Readonly<Record<string, AuthFailure>> = {
  ERR_JWT_EXPIRED: "expired",
  ERR_JWT_CLAIM_VALIDATION_FAILED: "wrong_claims",
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: "invalid_signature",
  ERR_JWKS_NO_MATCHING_KEY: "unknown_key",
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: "unknown_key",
  ERR_JOSE_ALG_NOT_ALLOWED: "algorithm",
  ERR_JOSE_NOT_SUPPORTED: "algorithm",
  ERR_JWS_INVALID: "malformed",
  ERR_JWT_INVALID: "malformed",
};

function describe(failure: AuthFailure, err: unknown): string {
  switch (failure) {
    case "expired":
      return "the token has expired";
    case "wrong_claims": {
      const claim = (err as { claim?: string }).claim;
      return claim
        ? `the token's "${claim}" claim is not accepted here`
        : "the token's claims are not accepted";
    }
    case "invalid_signature":
      return "the token's signature does not verify";
    case "unknown_key":
      return "the token is signed with a key this API does not know";
    case "algorithm":
      return "the token's algorithm is not allowed";
    case "malformed":
    case "missing":
      return "the token is malformed";
  }
}

/**
 * Creates a verifier from the configuration: a JWKS URL if set, else a PEM public key file, else
 * (only when `allowDevKey`) the development key. Issuer, audience and algorithms are pinned;
 * `alg: none` and symmetric algorithms are never accepted.
 *
 * @throws {AuthConfigError} when no key source is usable.
 */
export async function createTokenVerifier(
  settings: AuthSettings,
  allowDevKey: boolean,
): Promise<TokenVerifier> {
  let key: JWTVerifyGetKey | CryptoKey;
  let keySource: string;
  if (settings.jwksUrl) {
    key = createRemoteJWKSet(new URL(settings.jwksUrl), {
      cooldownDuration: 30_000,
      cacheMaxAge: 600_000,
    });
    keySource = `jwks ${settings.jwksUrl}`;
  } else if (settings.publicKeyFile) {
    let pem: string;
    try {
      pem = readFileSync(settings.publicKeyFile, "utf8");
    } catch (err) {
      throw new AuthConfigError(
        `cannot read ${settings.publicKeyFile} (DV_AUTH_PUBLIC_KEY_FILE): ${String(err)}`,
      );
    }
    key = await importSPKI(pem, settings.algorithms[0] ?? "ES256");
    keySource = `public key file ${settings.publicKeyFile}`;
  } else if (allowDevKey) {
    const dev = await loadDevKey(settings.devKeyFile, true);
    key = createLocalJWKSet({ keys: [dev.publicJwk] });
    keySource = `development key ${settings.devKeyFile}`;
  } else {
    throw new AuthConfigError(
      "no token verification key: set DV_AUTH_JWKS_URL or DV_AUTH_PUBLIC_KEY_FILE",
    );
  }

  // Tokens already verified, with what they grant, for at most VERIFIED_TTL_MS and never past
  // their expiry: a client sends the same token with every request, and checking its signature
  // again each time was the largest single cost of a read. Failures are never kept.
  const verified = new Map<string, { principal: Principal; until: number }>();
  const maxLifetimeSeconds =
    (settings.maxTokenLifetimeHours ?? DEFAULT_MAX_TOKEN_LIFETIME_HOURS) * 3600;
  const known = (authorization: string | undefined): Principal | undefined => {
    const entry = authorization ? verified.get(authorization) : undefined;
    if (!entry) return undefined;
    if (Date.now() < entry.until) return entry.principal;
    verified.delete(authorization as string);
    return undefined;
  };

  return {
    keySource,
    known,
    async verify(authorization) {
      const remembered = known(authorization);
      if (remembered) return remembered;
      const principal = await verifyOnce(authorization);
      if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
      verified.set(authorization as string, {
        principal: principal.principal,
        until: Math.min(principal.expiresAt, Date.now() + VERIFIED_TTL_MS),
      });
      return principal.principal;
    },
  };

  async function verifyOnce(
    authorization: string | undefined,
  ): Promise<{ principal: Principal; expiresAt: number }> {
    const match = /^Bearer ([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*\.[A-Za-z0-9\-_]*)$/.exec(
      authorization ?? "",
    );
    if (!authorization)
      throw new AuthenticationError(
        "missing",
        "send a bearer token: Authorization: Bearer <token>",
      );
    if (!match?.[1])
      throw new AuthenticationError("malformed", "the Authorization header must be: Bearer <JWT>");
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(match[1], key as JWTVerifyGetKey, {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: [...settings.algorithms],
        requiredClaims: ["sub", "exp", "iat"],
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      }));
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      const failure = JOSE_FAILURES[code] ?? "malformed";
      throw new AuthenticationError(failure, describe(failure, err), { cause: err });
    }
    const parsed = claims.safeParse(payload);
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join(".") ?? "claims";
      throw new AuthenticationError(
        "wrong_claims",
        `the token's "${field}" claim is missing or not valid`,
      );
    }
    const { sub, dv_role: role, dv_tenant: tenant, dv_project: project, iat, exp } = parsed.data;
    // A token from the future comes from an issuer whose clock is wrong, or was dated ahead to
    // outlive the lifetime bound; either way its times cannot be trusted.
    const nowSeconds = Math.floor(Date.now() / 1000);
    if (iat > nowSeconds + CLOCK_TOLERANCE_SECONDS) {
      throw new AuthenticationError(
        "wrong_claims",
        `the token was issued in the future ("iat" ${new Date(iat * 1000).toISOString()}); check the issuer's clock`,
      );
    }
    if (exp - iat > maxLifetimeSeconds) {
      throw new AuthenticationError(
        "wrong_claims",
        `the token is valid for ${formatHours(exp - iat)} ("exp" minus "iat"), longer than the ${formatHours(maxLifetimeSeconds)} this API accepts; get a shorter-lived one`,
      );
    }
    if (role !== "operator" && !tenant) {
      throw new AuthenticationError(
        "wrong_claims",
        `a ${role} token must name its tenant in "dv_tenant"`,
      );
    }
    return {
      principal: {
        subject: sub,
        role,
        ...(role !== "operator" && tenant ? { tenant } : {}),
        ...(role !== "operator" && project ? { project } : {}),
        issuedAt: iat,
      },
      expiresAt: exp * 1000,
    };
  }
}

function formatHours(seconds: number): string {
  const hours = seconds / 3600;
  return `${Number.isInteger(hours) ? hours : hours.toFixed(1)} h`;
}

/** How long a verified token is taken at its word before its signature is checked again. */
const VERIFIED_TTL_MS = 60_000;
/** Verified tokens remembered at most (the oldest is forgotten first). */
const VERIFIED_MAX = 10_000;

/** What a minted token grants. */
export interface MintOptions {
  readonly key: DevKey;
  readonly issuer: string;
  readonly audience: string;
  readonly subject: string;
  readonly role: Role;
  readonly tenant?: string | undefined;
  readonly project?: string | undefined;
  readonly ttlSeconds: number;
  readonly now?: Date;
}

/** Signs a token with the development key (for `dv dev` and `dv token create`). */
export function mintToken(options: MintOptions): Promise<string> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  return new SignJWT({
    dv_role: options.role,
    ...(options.tenant ? { dv_tenant: options.tenant } : {}),
    ...(options.project ? { dv_project: options.project } : {}),
  })
    .setProtectedHeader({ alg: options.key.alg, kid: options.key.kid, typ: "JWT" })
    .setIssuer(options.issuer)
    .setAudience(options.audience)
    .setSubject(options.subject)
    .setIssuedAt(now)
    .setExpirationTime(now + options.ttlSeconds)
    .sign(options.key.privateKey);
}
