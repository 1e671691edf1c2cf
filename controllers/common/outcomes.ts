import type { DeadLetterStore, InboxStore } from "../../src/contexts/runtime/index.js";
import { workerConsumer } from "../../src/messaging/index.js";
import type { WorkerService } from "../../src/messaging/index.js";

/** What became of a command, as PostgreSQL records it. */
export type Outcome =
  | { readonly state: "pending" }
  | { readonly state: "done"; readonly result: Record<string, unknown> }
  | { readonly state: "failed"; readonly reason: string; readonly deadLetterId: string };

/**
 * Reads what became of a command from the system of record, not from NATS: the worker's inbox
 * holds the event it announced; a dead letter says it failed; a replayed dead letter points to
 * the command that replaced it. A lost event therefore only delays a reconcile; it never loses one.
 */
export class CommandOutcomes {
  readonly #inbox: InboxStore;
  readonly #deadLetters: DeadLetterStore;

  constructor(inbox: InboxStore, deadLetters: DeadLetterStore) {
    this.#inbox = inbox;
    this.#deadLetters = deadLetters;
  }

  async lookup(service: WorkerService, commandId: string): Promise<Outcome> {
    let id = commandId;
    for (let hops = 0; hops < 10; hops++) {
      const outcome = await this.#inbox.handled(workerConsumer(service), id);
      if (outcome) {
        const data = (outcome.envelope.data ?? {}) as Record<string, unknown>;
        return { state: "done", result: data };
      }
      const dead = await this.#deadLetters.findByMessage(id);
      if (!dead) return { state: "pending" };
      if (dead.state === "open" || dead.state === "discarded")
        return { state: "failed", reason: dead.reason, deadLetterId: dead.id };
      if (!dead.replayMessageId) return { state: "pending" };
      id = dead.replayMessageId;
    }
    return { state: "pending" };
  }
}
