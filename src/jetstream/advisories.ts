import {
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import type { InboxStore } from "../contexts/runtime/index.js";
import { STREAMS, type TopologyNames } from "./topology.js";
import type { Logger } from "../observability/index.js";
import type { DeadLetterService } from "../workflow/index.js";
import { DEAD_LETTER_CONSUMER, HEADERS } from "../messaging/index.js";

interface Advisory {
  readonly type?: string;
  readonly stream?: string;
  readonly consumer?: string;
  readonly stream_seq?: number;
  readonly deliveries?: number;
}

/** Options of {@link AdvisoryProcessor}. */
export interface AdvisoryProcessorOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly inbox: InboxStore;
  readonly deadLetters: DeadLetterService;
  readonly log: Logger;
  readonly now: () => Date;
  readonly names?: TopologyNames;
}

function notFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.NoMessageFound || err.code === JetStreamApiCodes.StreamNotFound)
  );
}

/**
 * Turns JetStream's max-deliveries advisories into dead letters: a command whose worker crashed
 * or timed out on every delivery never reported an error, so the server's advisory is the only
 * signal. The command is read back from the stream, recorded with every attempt the workers did
 * log, its task failed, and the message removed from the command stream. Terminated messages
 * were already dead-lettered by their worker.
 */
export class AdvisoryProcessor {
  readonly #o: AdvisoryProcessorOptions;
  readonly #names: TopologyNames;
  #messages: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;

  constructor(options: AdvisoryProcessorOptions) {
    this.#o = options;
    this.#names = options.names ?? STREAMS;
  }

  async start(): Promise<void> {
    const consumer = await this.#o.js.consumers.get(this.#names.advisories, DEAD_LETTER_CONSUMER);
    this.#messages = await consumer.consume({ max_messages: 64 });
    this.#loop = (async () => {
      for await (const msg of this.#messages as ConsumerMessages) {
        try {
          await this.#handle(JSON.parse(msg.string()) as Advisory);
          msg.ack();
        } catch (err) {
          this.#o.log.error({ err }, "advisory not processed; it will be redelivered");
          msg.nak(5_000);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    await this.#messages?.close();
    await this.#loop;
  }

  async #handle(advisory: Advisory): Promise<void> {
    if (
      advisory.type !== "io.nats.jetstream.advisory.v1.max_deliver" ||
      advisory.stream_seq === undefined
    )
      return;
    const stream = advisory.stream ?? this.#names.commands;
    const consumer = advisory.consumer ?? "";
    const service = consumer.replace(/^dv-/, "");
    let stored;
    try {
      stored = await this.#o.jsm.streams.getMessage(stream, { seq: advisory.stream_seq });
    } catch (err) {
      if (notFound(err)) return; // handled and removed meanwhile
      throw err;
    }
    if (!stored) return;
    let envelope: Record<string, unknown>;
    try {
      envelope = stored.json<Record<string, unknown>>();
    } catch {
      envelope = { raw: stored.string().slice(0, 10_000) };
    }
    const messageId =
      typeof envelope.id === "string"
        ? envelope.id
        : (stored.header?.get("Nats-Msg-Id") ?? `${stream}:${advisory.stream_seq}`);
    if ((await this.#o.inbox.handled(consumer, messageId)) === undefined) {
      const attempts = await this.#o.inbox.attempts(consumer, messageId);
      const deliveries = advisory.deliveries ?? 0;
      const reason = `max_deliveries: no answer after ${deliveries} deliveries (the worker crashed or timed out each time)`;
      await this.#o.deadLetters.record({
        consumer,
        service,
        messageId,
        subject: stored.subject,
        envelope,
        errors: [
          ...attempts.map((a) => ({ at: a.at.toISOString(), code: a.code, message: a.message })),
          { at: this.#o.now().toISOString(), code: "max_deliveries", message: reason },
        ],
        deliveryCount: deliveries,
        reason,
        traceparent: stored.header?.get(HEADERS.traceparent) || undefined,
      });
      this.#o.log.warn(
        { message_id: messageId, subject: stored.subject, deliveries },
        "command dead-lettered after its last delivery",
      );
    }
    try {
      await this.#o.jsm.streams.deleteMessage(stream, advisory.stream_seq);
    } catch (err) {
      if (!notFound(err)) throw err;
    }
  }
}
