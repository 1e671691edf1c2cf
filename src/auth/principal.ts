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
