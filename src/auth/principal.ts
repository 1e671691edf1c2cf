/** The roles a bearer token can carry. */
export const ROLES = ["tenant-admin", "tenant-reader", "operator"] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling, as the verified token says. */
export interface Principal {
  /** The token's `sub`: recorded as the actor of every change. */
  readonly subject: string;
  readonly role: Role;
  /** The tenant (id or name) a tenant role is scoped to; absent for operators. */
  readonly tenant?: string;
  /** The project (id or name) a tenant role is further scoped to, if any. */
  readonly project?: string;
  /**
   * The token's `iat`, in whole seconds since the epoch. A tenant or project the token names by
   * name is the one of that name that existed when the token was issued: one created later (the
   * name deleted and taken again) is not the token's, so a token never inherits a newcomer.
   * Absent only for principals made in process (tests, tools), never for a verified token.
   */
  readonly issuedAt?: number;
}

/**
 * Whether an object created at `createdAt` may be the one a principal's token names by name:
 * it existed when the token was issued (compared in whole seconds, the resolution of `iat`).
 */
export function issuedAfterCreation(principal: Principal, createdAt: Date): boolean {
  if (principal.issuedAt === undefined) return true;
  return Math.floor(createdAt.getTime() / 1000) <= principal.issuedAt;
}

/** The actor string written to audit records and task history. */
export function actorOf(principal: Principal): string {
  return principal.role === "operator"
    ? `operator:${principal.subject}`
    : `user:${principal.subject}`;
}

/** True for roles that may change things (operators, tenant admins). */
export function canWrite(principal: Principal): boolean {
  return principal.role !== "tenant-reader";
}
