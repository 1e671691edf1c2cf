import type { z } from "zod";
import {
  ENVELOPE_SPEC_VERSION,
  type Envelope,
  envelopeSchema,
  receivedEnvelopeSchema,
} from "./envelope.js";
import type { Service } from "./subjects.js";

/**
 * One message type: its name, the version of its payload schema, who sends it, on which subject,
 * and the payload schema. Producers and consumers share the definition; `docs/` lists them all.
 */
export interface MessageDefinition<Data extends z.ZodObject = z.ZodObject> {
  readonly type: string;
  /** Bumped when a field changes meaning; additive changes keep it. */
  readonly version: number;
  readonly source: Service;
  /** The subject the message is published on. */
  readonly subject: string;
  readonly description: string;
  /** The payload without `schema_version`; unknown fields are ignored on receipt. */
  readonly data: Data;
}

/** Thrown when a message does not fit its definition: producers and consumers both use it. */
export class MessageError extends Error {
  override readonly name = "MessageError";
  readonly code = "DV_MESSAGE";
  /** `envelope`, `unknown_type`, `unsupported_version` or `data`. */
  readonly reason: "envelope" | "unknown_type" | "unsupported_version" | "data";
  readonly issues: readonly { path: string; message: string }[];

  constructor(
    reason: MessageError["reason"],
    message: string,
    issues: readonly { path: string; message: string }[] = [],
  ) {
    super(
      issues.length > 0
        ? `${message}: ${issues.map((i) => `${i.path || "(root)"}: ${i.message}`).join("; ")}`
        : message,
    );
    this.reason = reason;
    this.issues = issues;
  }
}

const issuesOf = (error: z.ZodError) =>
  error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));

/** A set of message definitions, keyed by type. */
export class MessageRegistry {
  readonly #byType = new Map<string, MessageDefinition>();

  /** Adds a definition. @throws {Error} when the type is defined twice. */
  define<Data extends z.ZodObject>(definition: MessageDefinition<Data>): MessageDefinition<Data> {
    if (this.#byType.has(definition.type))
      throw new Error(`message type ${definition.type} is defined twice`);
    this.#byType.set(definition.type, definition);
    return definition;
  }

  /** Every definition, sorted by subject then type. */
  all(): MessageDefinition[] {
    return [...this.#byType.values()].sort(
      (a, b) => a.subject.localeCompare(b.subject) || a.type.localeCompare(b.type),
    );
  }

  get(type: string): MessageDefinition | undefined {
    return this.#byType.get(type);
  }

  /**
   * Parses a received message: the envelope (unknown fields ignored), its type, its payload
   * version and payload (unknown fields ignored).
   *
   * @throws {MessageError} saying which part is wrong, so the message can be dead-lettered.
   */
  parse(raw: unknown): {
    envelope: Envelope;
    definition: MessageDefinition;
    data: Record<string, unknown>;
  } {
    const envelope = receivedEnvelopeSchema.safeParse(raw);
    if (!envelope.success)
      throw new MessageError("envelope", "not a valid envelope", issuesOf(envelope.error));
    const definition = this.#byType.get(envelope.data.type);
    if (!definition)
      throw new MessageError("unknown_type", `unknown message type ${envelope.data.type}`);
    const version = envelope.data.data.schema_version;
    if (version !== definition.version) {
      throw new MessageError(
        "unsupported_version",
        `${definition.type} payload version ${String(version)} is not supported (expected ${definition.version})`,
      );
    }
    const data = definition.data.safeParse(envelope.data.data);
    if (!data.success)
      throw new MessageError("data", `invalid ${definition.type} payload`, issuesOf(data.error));
    return {
      envelope: envelope.data,
      definition,
      data: data.data,
    };
  }
}

/** Where a message comes from and what it belongs to. */
export interface MessageContext {
  readonly id: string;
  readonly time: Date;
  /** The resource the message is about within its domain (a task id, a network id, …). */
  readonly subject: string;
  readonly actor: string;
  readonly correlationId: string;
  readonly causationId?: string | null;
  readonly tenantId?: string | null;
  readonly projectId?: string | null;
  readonly environmentId?: string | null;
  readonly datacenterId?: string | null;
}

/**
 * Builds the envelope of a message, validating it strictly (unknown fields are a producer bug).
 *
 * @throws {MessageError} when the payload or envelope does not fit.
 */
/** Strict variants of payload schemas, built once: zod compiles a schema on its first use. */
const strictSchemas = new WeakMap<z.ZodObject, z.ZodObject>();

export function createEnvelope<Data extends z.ZodObject>(
  definition: MessageDefinition<Data>,
  data: z.input<Data>,
  context: MessageContext,
): Envelope {
  let schema = strictSchemas.get(definition.data);
  if (!schema) {
    schema = definition.data.strict();
    strictSchemas.set(definition.data, schema);
  }
  const strict = schema.safeParse(data);
  if (!strict.success)
    throw new MessageError("data", `invalid ${definition.type} payload`, issuesOf(strict.error));
  const envelope = {
    specversion: ENVELOPE_SPEC_VERSION,
    id: context.id,
    type: definition.type,
    source: definition.source,
    subject: context.subject,
    time: context.time.toISOString(),
    datacontenttype: "application/json",
    tenant_id: context.tenantId ?? null,
    project_id: context.projectId ?? null,
    environment_id: context.environmentId ?? null,
    datacenter_id: context.datacenterId ?? null,
    actor: context.actor,
    correlation_id: context.correlationId,
    causation_id: context.causationId ?? null,
    data: { schema_version: definition.version, ...strict.data },
  };
  const checked = envelopeSchema.safeParse(envelope);
  if (!checked.success)
    throw new MessageError("envelope", "invalid envelope", issuesOf(checked.error));
  return checked.data;
}
