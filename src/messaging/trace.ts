import { randomFillSync } from "node:crypto";

/** Header names every message carries besides `Nats-Msg-Id`. */
export const HEADERS = {
  correlationId: "dv-correlation-id",
  traceparent: "traceparent",
  fencingToken: "dv-fencing-token",
} as const;

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

// Random ids for spans and traces, drawn from a pool refilled 4 KiB at a time: one call into the
// kernel's random source per message cost the relay and the workers measurable CPU.
const pool = Buffer.alloc(4096);
let used = pool.length;

function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString("hex", used, used + bytes);
  used += bytes;
  return hex;
}

/**
 * A W3C `traceparent` for a message caused by `parent` (same trace, new span), or a new trace when
 * there is no valid parent.
 */
export function childTraceparent(parent: string | undefined): string {
  const match = parent ? TRACEPARENT.exec(parent) : null;
  const traceId = match?.[1] && match[1] !== "0".repeat(32) ? match[1] : randomHex(16);
  const flags = match?.[3] ?? "01";
  return `00-${traceId}-${randomHex(8)}-${flags}`;
}

/** The trace id of a `traceparent`, if valid. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent ? TRACEPARENT.exec(traceparent)?.[1] : undefined;
}

/**
 * The headers of a message in a workflow: correlation id and trace context. `traceparent` is the
 * span that sends the message (its consumer's span becomes that span's child); without a valid
 * one the message starts a trace of its own.
 */
export function messageHeaders(
  correlationId: string,
  traceparent?: string | null,
): Record<string, string> {
  return {
    [HEADERS.correlationId]: correlationId,
    [HEADERS.traceparent]:
      traceparent && traceIdOf(traceparent) && !/^00-0{32}-/.test(traceparent)
        ? traceparent
        : childTraceparent(undefined),
  };
}
