/**
 * Domain errors shared across bounded contexts. Each has a stable `code`; the API facade maps
 * codes to HTTP statuses and problem types, the CLI to exit codes. Messages say what to re-read
 * or change, and carry no SQL.
 */

/** Thrown when a resource does not exist (or is not visible to the caller's tenant). */
export class NotFoundError extends Error {
  override readonly name = "NotFoundError";
  readonly code = "DV_NOT_FOUND";
  readonly kind: string;
  readonly id: string;

  constructor(kind: string, id: string, options?: ErrorOptions) {
    super(`${kind} ${id} not found`, options);
    this.kind = kind;
    this.id = id;
  }
}

/**
 * Thrown when an update names a version that is no longer current (optimistic concurrency):
 * someone else changed the resource since the caller read it.
 */
export class VersionConflictError extends Error {
  override readonly name = "VersionConflictError";
  readonly code = "DV_VERSION_CONFLICT";
  readonly kind: string;
  readonly id: string;
  readonly expectedVersion: number;
  readonly currentVersion: number;

  constructor(kind: string, id: string, expectedVersion: number, currentVersion: number) {
    super(
      `${kind} ${id} is at version ${currentVersion}, not ${expectedVersion}: re-read it and apply your change again`,
    );
    this.kind = kind;
    this.id = id;
    this.expectedVersion = expectedVersion;
    this.currentVersion = currentVersion;
  }
}

/** Thrown when a name is already taken where names must be unique. */
export class AlreadyExistsError extends Error {
  override readonly name = "AlreadyExistsError";
  readonly code = "DV_ALREADY_EXISTS";
  readonly kind: string;
  readonly resourceName: string;

  constructor(kind: string, name: string, scope: string, options?: ErrorOptions) {
    super(`${kind} "${name}" already exists in ${scope}`, options);
    this.kind = kind;
    this.resourceName = name;
  }
}

/** What a pool hands out. */
export type PoolResource = "vlan" | "prefix" | "server";

/** Thrown when a pool has nothing free of what was asked (every VLAN, block or server taken). */
export class PoolExhaustedError extends Error {
  override readonly name = "PoolExhaustedError";
  readonly code = "DV_POOL_EXHAUSTED";
  readonly resource: PoolResource;
  readonly pool: string;

  constructor(resource: PoolResource, pool: string, detail: string) {
    super(`${resource} pool "${pool}" is exhausted: ${detail}`);
    this.resource = resource;
    this.pool = pool;
  }
}

/** Thrown when a datacenter's finite capacity cannot cover a reservation. */
export class CapacityExhaustedError extends Error {
  override readonly name = "CapacityExhaustedError";
  readonly code = "DV_CAPACITY_EXHAUSTED";
  readonly datacenterId: string;
  readonly resource: string;
  readonly requested: number;

  constructor(datacenterId: string, resource: string, requested: number, available: number) {
    super(
      `datacenter ${datacenterId} has ${available} ${resource} available, ${requested} requested`,
    );
    this.datacenterId = datacenterId;
    this.resource = resource;
    this.requested = requested;
  }
}

/** Thrown when something cannot be changed or removed because other things still use it. */
export class InUseError extends Error {
  override readonly name = "InUseError";
  readonly code = "DV_IN_USE";
  readonly kind: string;
  readonly id: string;
  readonly usedBy: readonly string[];

  constructor(kind: string, id: string, usedBy: readonly string[]) {
    super(`${kind} ${id} is in use by ${usedBy.join(", ")}`);
    this.kind = kind;
    this.id = id;
    this.usedBy = usedBy;
  }
}

/** Thrown when a state machine is asked for a transition it does not allow. */
export class InvalidTransitionError extends Error {
  override readonly name = "InvalidTransitionError";
  readonly code = "DV_INVALID_TRANSITION";
  readonly kind: string;
  readonly id: string;
  readonly from: string;
  readonly to: string;

  constructor(kind: string, id: string, from: string, to: string) {
    super(`${kind} ${id} cannot go from ${from} to ${to}`);
    this.kind = kind;
    this.id = id;
    this.from = from;
    this.to = to;
  }
}

/**
 * Thrown when a range or prefix overlaps one that already exists where overlaps are not allowed.
 * `other` names the one it overlaps (its owner's kind and name, and its value) when known.
 */
export class OverlapError extends Error {
  override readonly name = "OverlapError";
  readonly code = "DV_OVERLAP";
  readonly kind: string;
  readonly value: string;
  readonly other:
    { readonly kind: string; readonly name: string; readonly value: string } | undefined;

  constructor(
    kind: string,
    value: string,
    scope: string,
    options?: ErrorOptions & {
      other?: { readonly kind: string; readonly name: string; readonly value: string };
    },
  ) {
    const other = options?.other;
    super(
      other
        ? `${kind} ${value} overlaps ${kind} ${other.value} of ${other.kind} "${other.name}" in ${scope}`
        : `${kind} ${value} overlaps another ${kind} in ${scope}`,
      options,
    );
    this.kind = kind;
    this.value = value;
    this.other = other;
  }
}

/**
 * Thrown when a request would take a tenant past one of its quotas: nothing was recorded. Names
 * the quota, its scope (a datacenter, a machine class, an environment, or `*`), the limit, what
 * the tenant already holds and what the request asked for.
 */
export class QuotaExceededError extends Error {
  override readonly name = "QuotaExceededError";
  readonly code = "DV_QUOTA_EXCEEDED";
  readonly quota: string;
  readonly scope: string;
  readonly limit: number;
  readonly used: number;
  readonly requested: number;

  constructor(input: {
    quota: string;
    scope: string;
    limit: number;
    used: number;
    requested: number;
  }) {
    const where = input.scope === "*" ? "" : ` in ${input.scope}`;
    super(
      `quota ${input.quota}${where} is ${input.limit}: ${input.used} in use, ${input.requested} more requested; free some or ask an operator to raise it`,
    );
    this.quota = input.quota;
    this.scope = input.scope;
    this.limit = input.limit;
    this.used = input.used;
    this.requested = input.requested;
  }
}

/**
 * Thrown when a request names a platform object (a datacenter, a machine class, a network pool)
 * that does not exist or cannot be used now. `field` is where the request named it.
 */
export class InvalidReferenceError extends Error {
  override readonly name = "InvalidReferenceError";
  readonly code = "DV_INVALID_REFERENCE";
  readonly field: string;
  readonly kind: string;
  readonly ref: string;

  constructor(input: { field: string; kind: string; ref: string; detail: string }) {
    super(input.detail);
    this.field = input.field;
    this.kind = input.kind;
    this.ref = input.ref;
  }
}
