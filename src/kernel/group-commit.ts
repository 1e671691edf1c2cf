/** What became of one item of a flush. */
export type Settled<R> =
  { readonly ok: true; readonly value: R } | { readonly ok: false; readonly error: unknown };

interface Waiting<I, R> {
  readonly item: I;
  readonly resolve: (value: R) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit: items submitted one by one are written together. One flush runs at a time;
 * whatever is submitted while it runs waits for the next, which takes up to `max` of them. An
 * idle batcher flushes at once, so a lone item waits for nobody; under load the batches grow by
 * themselves, and the cost of a transaction is shared by everything that arrived during the
 * previous one (River's completer, graphile-worker's batched completion).
 *
 * `flush` answers for every item: one item's failure is its own, never its batch-mates'.
 */
export class GroupCommit<I, R> {
  readonly #flush: (items: I[]) => Promise<Settled<R>[]>;
  readonly #max: number;
  #queue: Waiting<I, R>[] = [];
  #busy = false;

  constructor(flush: (items: I[]) => Promise<Settled<R>[]>, max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`max must be a positive integer, not ${max}`);
    this.#flush = flush;
    this.#max = max;
  }

  /** Adds `item` to the next flush; settles with its own outcome. */
  submit(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      // Set and cleared in the same turn as the queue is checked: an item can never be left
      // behind by a flush that is just finishing.
      if (!this.#busy) void this.#pump();
    });
  }

  /** Items waiting for a flush (not those being flushed). */
  get waiting(): number {
    return this.#queue.length;
  }

  async #pump(): Promise<void> {
    this.#busy = true;
    // The loop's last check and the flag's reset happen in one turn (no await between them).
    try {
      while (this.#queue.length > 0) await this.#flushNext();
    } finally {
      this.#busy = false;
    }
  }

  async #flushNext(): Promise<void> {
    const batch = this.#queue.splice(0, this.#max);
    let outcomes: Settled<R>[];
    try {
      outcomes = await this.#flush(batch.map((w) => w.item));
    } catch (error) {
      outcomes = batch.map(() => ({ ok: false, error }));
    }
    batch.forEach((waiting, i) => {
      const outcome = outcomes[i];
      if (!outcome) waiting.reject(new Error("the flush gave no outcome for this item"));
      else if (outcome.ok) waiting.resolve(outcome.value);
      else waiting.reject(outcome.error);
    });
  }
}
