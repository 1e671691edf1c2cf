import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import {
  type CryptoKey,
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type JWK,
} from "jose";
import { AuthConfigError } from "./errors.js";

/** The development signing key of `dv dev` and `dv token create`. */
export interface DevKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly kid: string;
  readonly alg: "ES256";
}

interface StoredKey {
  readonly kid: string;
  readonly alg: "ES256";
  readonly privateJwk: JWK;
}

/**
 * Reads the development signing key, creating it (ES256, file mode 0600) when `create` is set and
 * the file does not exist. Production deployments verify with a JWKS URL or a public key file
 * instead and never hold a signing key.
 *
 * @throws {AuthConfigError} when the file is missing (and `create` is off) or not a key.
 */
export async function loadDevKey(path: string, create: boolean): Promise<DevKey> {
  let stored: StoredKey | undefined;
  try {
    stored = JSON.parse(readFileSync(path, "utf8")) as StoredKey;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT")
      throw new AuthConfigError(
        `${path} (DV_AUTH_DEV_KEY_FILE) is not a signing key: ${String(err)}`,
      );
    if (!create) {
      throw new AuthConfigError(
        `no development signing key at ${path} (DV_AUTH_DEV_KEY_FILE); start dv dev once to create it, or point DV_AUTH_DEV_KEY_FILE at it`,
      );
    }
  }
  if (!stored) {
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwk = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(privateJwk);
    stored = { kid, alg: "ES256", privateJwk: { ...privateJwk, kid, alg: "ES256" } };
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  const privateKey = (await importJWK(stored.privateJwk, "ES256")) as CryptoKey;
  const { d: _secret, ...publicJwk } = stored.privateJwk;
  return {
    privateKey,
    publicJwk: { ...publicJwk, kid: stored.kid, alg: "ES256", use: "sig" },
    kid: stored.kid,
    alg: "ES256",
  };
}
