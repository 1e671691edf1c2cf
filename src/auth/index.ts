export {
  AuthConfigError,
  AuthenticationError,
  type AuthFailure,
  ForbiddenError,
} from "./errors.js";
export { type DevKey, loadDevKey } from "./keys.js";
export {
  actorOf,
  canWrite,
  issuedAfterCreation,
  type Principal,
  ROLES,
  type Role,
} from "./principal.js";
export {
  type AuthSettings,
  createTokenVerifier,
  DEFAULT_MAX_TOKEN_LIFETIME_HOURS,
  type MintOptions,
  mintToken,
  type TokenVerifier,
} from "./tokens.js";
