import { z } from "zod";
import { SERVICES } from "./subjects.js";

/** Version of the envelope format itself (seed 001: initially 1.0). */
export const ENVELOPE_SPEC_VERSION = "1.0";

const id = z.string().min(1).max(128);
const optionalId = id.nullable();

/**
 * The fields of seed 001's envelope, exactly. Producers validate with {@link envelopeSchema}
 * (unknown fields rejected); consumers with {@link receivedEnvelopeSchema} (unknown fields
 * ignored, so a newer producer can add some).
 */
const envelopeShape = {
  specversion: z.literal(ENVELOPE_SPEC_VERSION),
  id,
  /** Logical message type: `nett.network.apply`, `task.created`, … */
  type: z
    .string()
    .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, { error: "must be dotted lower-case words" }),
  /** The emitting service. */
  source: z.enum(SERVICES),
  /** The resource the message is about, within the emitting domain. */
  subject: z.string().min(1).max(256),
  /** RFC 3339, UTC. */
  time: z.iso.datetime({ offset: false }),
  datacontenttype: z.literal("application/json"),
  tenant_id: optionalId,
  project_id: optionalId,
  environment_id: optionalId,
  datacenter_id: optionalId,
  actor: z.string().min(1).max(256),
  correlation_id: id,
  causation_id: optionalId,
  /** The payload: a JSON object whose schema is versioned per `type` (see the registry). */
  data: z.record(z.string(), z.unknown()),
};

/** What a producer may send. */
export const envelopeSchema = z.strictObject(envelopeShape);

/** What a consumer accepts: the same fields, extra ones ignored. */
export const receivedEnvelopeSchema = z.object(envelopeShape);

export type Envelope = z.infer<typeof envelopeSchema>;
