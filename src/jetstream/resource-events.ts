import { DeliverPolicy, type ConsumerMessages, type JetStreamClient } from "@nats-io/jetstream";
import { STREAMS } from "./topology.js";

/**
 * A source of the reconcile manager (structurally a `Source` of src/reconcile): every domain
 * event and dead-letter event that names a resource (`resource_kind`, `resource_id`) queues
 * `<kind>:<id>`. An ordered-by-nobody, new-only consumer per stream: a pass reads state afresh,
 * so an event missed while the process was down only waits for the resync.
 */
export function resourceEventSource(js: JetStreamClient): {
  readonly name: string;
  start(enqueue: (key: string) => void): Promise<() => Promise<void>>;
} {
  return {
    name: "jetstream events",
    async start(enqueue) {
      const subscriptions: ConsumerMessages[] = [];
      for (const stream of [STREAMS.events, STREAMS.deadLetters]) {
        const consumer = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.New });
        const messages = await consumer.consume();
        subscriptions.push(messages);
        void (async () => {
          for await (const msg of messages) {
            const key = resourceKeyOf(msg.data);
            if (key) enqueue(key);
          }
        })();
      }
      return async () => {
        for (const s of subscriptions) await s.close();
      };
    },
  };
}

const decoder = new TextDecoder();

/** `<kind>:<id>` of the resource an envelope's data names, if it names one. */
export function resourceKeyOf(bytes: Uint8Array): string | undefined {
  try {
    const envelope = JSON.parse(decoder.decode(bytes)) as {
      data?: Record<string, unknown>;
    };
    const data = envelope?.data ?? {};
    return typeof data.resource_kind === "string" && typeof data.resource_id === "string"
      ? `${data.resource_kind}:${data.resource_id}`
      : undefined;
  } catch {
    return undefined; // not an envelope: nothing to trigger
  }
}
