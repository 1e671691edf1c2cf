export {
  AuthConfigError,
  AuthenticationError,
  type AuthFailure,
  ForbiddenError,
} from "./errors.js";
export { type DevKey, loadDevKey } from "./keys.js";
export { actorOf, canWrite, type Principal, ROLES, type Role } from "./principal.js";
export {
  type AuthSettings,
  createTokenVerifier,
  type MintOptions,
  mintToken,
  type TokenVerifier,
} from "./tokens.js";
