// A development signing key that a `dv api` started by a test, a benchmark or hack/sites.ts
// trusts (the public half in a PEM file it is pointed at), and tokens minted with it.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { exportSPKI, importJWK } from "jose";
import { loadDevKey, mintToken, type Role } from "../../src/auth/index.js";

/** The key's environment for `dv api`, and tokens it accepts. */
export interface DevAuth {
  /** `DV_AUTH_PUBLIC_KEY_FILE`, `DV_AUTH_ISSUER`, `DV_AUTH_AUDIENCE`, `DV_AUTH_ALGORITHMS`. */
  readonly env: Record<string, string>;
  /** A token of `role` (for `tenant`), its subject `<name>-<role>`, valid `ttlSeconds` (4 h). */
  token(role: Role, tenant?: string, ttlSeconds?: number): Promise<string>;
}

/**
 * Loads the development key kept in `dir` (made the first time) and writes its public half
 * there, as `dev-key.json` and `dev-key.pub.pem`.
 */
export async function devAuth(options: {
  readonly dir: string;
  readonly issuer: string;
  /** The first part of every token's subject. */
  readonly name: string;
}): Promise<DevAuth> {
  const key = await loadDevKey(join(options.dir, "dev-key.json"), true);
  const publicKey = await importJWK(key.publicJwk, key.alg, { extractable: true });
  if (publicKey instanceof Uint8Array) throw new Error("the development key is not an EC key");
  const pem = join(options.dir, "dev-key.pub.pem");
  writeFileSync(pem, await exportSPKI(publicKey));
  const audience = "dataverket";
  return {
    env: {
      DV_AUTH_PUBLIC_KEY_FILE: pem,
      DV_AUTH_ISSUER: options.issuer,
      DV_AUTH_AUDIENCE: audience,
      DV_AUTH_ALGORITHMS: key.alg,
    },
    token: (role, tenant, ttlSeconds = 4 * 3600) =>
      mintToken({
        key,
        issuer: options.issuer,
        audience,
        subject: `${options.name}-${role}`,
        role,
        ...(tenant ? { tenant } : {}),
        ttlSeconds,
      }),
  };
}
