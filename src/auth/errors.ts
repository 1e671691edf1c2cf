/** Why a request was not authenticated. */
export type AuthFailure =
  | "missing"
  | "malformed"
  | "invalid_signature"
  | "expired"
  | "wrong_claims"
  | "unknown_key"
  | "algorithm";

/**
 * Thrown when a request carries no usable bearer token: missing, malformed, badly signed,
 * expired, for another issuer or audience, or with an algorithm that is not pinned. Answered
 * with 401 and `WWW-Authenticate: Bearer`.
 */
export class AuthenticationError extends Error {
  override readonly name = "AuthenticationError";
  readonly code = "DV_UNAUTHENTICATED";
  readonly failure: AuthFailure;

  constructor(failure: AuthFailure, message: string, options?: ErrorOptions) {
    super(message, options);
    this.failure = failure;
  }
}

/** Thrown when an authenticated caller may see a resource but not do what it asked. */
export class ForbiddenError extends Error {
  override readonly name = "ForbiddenError";
  readonly code = "DV_FORBIDDEN";
}

/** Thrown when the auth configuration cannot produce a verifier (no key source, unreadable key). */
export class AuthConfigError extends Error {
  override readonly name = "AuthConfigError";
  readonly code = "DV_AUTH_CONFIG";
}
