import { actorOf } from "../../auth/index.js";
import type { DeadLetter, DeadLetterState, DeadLetterStore } from "../../contexts/runtime/index.js";
import type { Page } from "../../kernel/index.js";
import type { DeadLetterService } from "../../workflow/index.js";
import { type CallContext, clean, requireOperator } from "./scope.js";

/** Dead letters (operators): listed, read, replayed or discarded, each action audited. */
export class DeadLetterFacade {
  readonly #deadLetters: DeadLetterStore;
  readonly #service: DeadLetterService;

  constructor(deadLetters: DeadLetterStore, service: DeadLetterService) {
    this.#deadLetters = deadLetters;
    this.#service = service;
  }

  /** Dead letters, oldest first, by state and service. */
  listDeadLetters(
    ctx: CallContext,
    filter: { state?: DeadLetterState | undefined; service?: string | undefined },
    options: { limit: number; after?: string | undefined },
  ): Promise<Page<DeadLetter>> {
    requireOperator(ctx, "read dead letters");
    return this.#deadLetters.list(clean(filter), options);
  }

  /** @throws {NotFoundError} */
  getDeadLetter(ctx: CallContext, id: string): Promise<DeadLetter> {
    requireOperator(ctx, "read dead letters");
    return this.#deadLetters.get(id);
  }

  /**
   * Sends a dead letter's message again (new id, caused by the dead letter), puts its task back
   * to `queued`, and audits it.
   *
   * @throws {NotFoundError} @throws {InvalidTransitionError} when it is not open.
   */
  async replayDeadLetter(ctx: CallContext, id: string, reason: string): Promise<DeadLetter> {
    requireOperator(ctx, "replay dead letters");
    const { messageId } = await this.#service.replay(
      id,
      actorOf(ctx.principal),
      reason,
      ctx.correlationId,
      ctx.traceparent,
    );
    return { ...(await this.#deadLetters.get(id)), replayMessageId: messageId };
  }

  /** Sets a dead letter aside for good, audited. @throws {InvalidTransitionError} when not open. */
  async discardDeadLetter(ctx: CallContext, id: string, reason: string): Promise<DeadLetter> {
    requireOperator(ctx, "discard dead letters");
    await this.#service.discard(id, actorOf(ctx.principal), reason, ctx.correlationId);
    return this.#deadLetters.get(id);
  }
}
