/**
 * The subject taxonomy of seed 001: every subject starts with `dv.`, names one of the accepted
 * services, and is one of four families.
 *
 *   dv.<service>.cmd.<action>            commands to a service
 *   dv.<service>.evt.<entity>.<verb>     domain events of a service
 *   dv.task.evt.<verb>                   task lifecycle events
 *   dv.rpc.<service>.<operation>         narrow request/reply
 */

/** The accepted Dataverket service identities; others need an ADR first. */
export const SERVICES = [
  "sentral",
  "identitet",
  "maskin",
  "plattform",
  "tjeneste",
  "objekt",
  "nett",
] as const;
export type Service = (typeof SERVICES)[number];

/** The domain services that run workers executing commands. */
export const WORKER_SERVICES = ["maskin", "nett", "plattform", "objekt"] as const;
export type WorkerService = (typeof WORKER_SERVICES)[number];

/** A subject, decomposed. */
export type SubjectParts =
  | { readonly family: "cmd"; readonly service: Service; readonly action: string }
  | {
      readonly family: "evt";
      readonly service: Service;
      readonly entity: string;
      readonly verb: string;
    }
  | { readonly family: "task"; readonly verb: string }
  | { readonly family: "rpc"; readonly service: Service; readonly operation: string };

/** A subject token: lower-case letters, digits and underscores, starting with a letter. */
const TOKEN = /^[a-z][a-z0-9_]*$/;

/** Thrown when a subject part is not a valid token or names an unknown service. */
export class SubjectError extends Error {
  override readonly name = "SubjectError";
  readonly code = "DV_SUBJECT";
}

function token(value: string, what: string): string {
  if (!TOKEN.test(value)) {
    throw new SubjectError(
      `${what} "${value}" must be lower-case letters, digits or "_", starting with a letter`,
    );
  }
  return value;
}

function service(value: string): Service {
  if (!(SERVICES as readonly string[]).includes(value)) {
    throw new SubjectError(`service "${value}" is not one of ${SERVICES.join(", ")}`);
  }
  return value as Service;
}

/** Builds a subject from its parts. @throws {SubjectError} */
export function buildSubject(parts: SubjectParts): string {
  switch (parts.family) {
    case "cmd":
      return `dv.${service(parts.service)}.cmd.${token(parts.action, "action")}`;
    case "evt":
      return `dv.${service(parts.service)}.evt.${token(parts.entity, "entity")}.${token(parts.verb, "verb")}`;
    case "task":
      return `dv.task.evt.${token(parts.verb, "verb")}`;
    case "rpc":
      return `dv.rpc.${service(parts.service)}.${token(parts.operation, "operation")}`;
  }
}

/** `dv.<service>.cmd.<action>` */
export const commandSubject = (svc: Service, action: string): string =>
  buildSubject({ family: "cmd", service: svc, action });

/** `dv.<service>.evt.<entity>.<verb>` */
export const eventSubject = (svc: Service, entity: string, verb: string): string =>
  buildSubject({ family: "evt", service: svc, entity, verb });

/** `dv.task.evt.<verb>` */
export const taskSubject = (verb: string): string => buildSubject({ family: "task", verb });

/** Parses a subject; `undefined` when it is not one of the four families. */
export function parseSubject(subject: string): SubjectParts | undefined {
  const parts = subject.split(".");
  if (parts[0] !== "dv" || parts.some((p) => !TOKEN.test(p))) return undefined;
  const [, a, b, c, d] = parts;
  const isService = (s: string | undefined): s is Service =>
    s !== undefined && (SERVICES as readonly string[]).includes(s);
  if (a === "task" && b === "evt" && parts.length === 4 && c) return { family: "task", verb: c };
  if (a === "rpc" && parts.length === 4 && isService(b) && c)
    return { family: "rpc", service: b, operation: c };
  if (isService(a) && b === "cmd" && parts.length === 4 && c)
    return { family: "cmd", service: a, action: c };
  if (isService(a) && b === "evt" && parts.length === 5 && c && d)
    return { family: "evt", service: a, entity: c, verb: d };
  return undefined;
}

/**
 * The cross-site coordination subject of a command for `datacenter`'s infrastructure
 * (`dv.site.<datacenter>.<service>.cmd.<action>`, ADR 0007): only that site's JetStream stores it,
 * and stores it as the command subject itself, so its workers see an ordinary command. Undefined
 * for a subject that is not a command.
 */
export function siteSubject(subject: string, datacenter: string): string | undefined {
  const parts = parseSubject(subject);
  if (parts?.family !== "cmd") return undefined;
  return `dv.site.${datacenter}.${parts.service}.cmd.${parts.action}`;
}

/** The coordination subjects a site's command stream takes: `dv.site.<datacenter>.*.cmd.*`. */
export const siteCommandFilter = (datacenter: string): string => `dv.site.${datacenter}.*.cmd.*`;

/**
 * The durable consumer a service's workers share. Its name is also the key of the workers'
 * inbox, where the reconcilers read what became of a command, so it belongs to the contract.
 */
export const workerConsumer = (service: WorkerService): string => `dv-${service}`;

/** The durable consumer of the dead-letter processor. */
export const DEAD_LETTER_CONSUMER = "dv-dead-letters";
