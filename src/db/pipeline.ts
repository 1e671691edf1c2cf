import { AsyncLocalStorage } from "node:async_hooks";
import type pg from "pg";

/**
 * Statements of a transaction whose answer nobody reads: `BEGIN`, `SET LOCAL ROLE`, `SAVEPOINT`
 * and `RELEASE SAVEPOINT`, in the forms drizzle and `actAs` write them. The texts are fixed by
 * our code; none carries user input.
 */
const AHEAD =
  /^(?:begin(?: isolation level (?:read committed|repeatable read|serializable))?|savepoint sp\d+|release savepoint sp\d+|SET LOCAL ROLE [a-z_]+)$/i;

const ROLLBACK = /^rollback\b/i;
const SET_ROLE = /^SET LOCAL ROLE ([a-z_]+)$/i;

/** The role the statements made inside {@link inRole} run as. */
const statementRole = new AsyncLocalStorage<string>();

/**
 * Runs `fn` so that every statement it sends on a pipelined transaction runs as `role`: the
 * switch is written right before the statement when the role in force is another one, so
 * contexts may send statements at the same time on one transaction and each still runs as its
 * own role (a switch per transaction would let one context's statement run as another's).
 */
export function inRole<T>(role: string, fn: () => T): T {
  if (!/^[a-z_]+$/.test(role)) throw new Error(`not a role name: ${JSON.stringify(role)}`);
  return statementRole.run(role, fn);
}

/** The answer a statement sent ahead gets at once, so its caller goes on. */
function answered(text: string): pg.QueryResult {
  return {
    command: text.split(" ", 1)[0]?.toUpperCase() ?? "",
    rowCount: null,
    oid: 0,
    rows: [],
    fields: [],
  };
}

/** What of a socket the pipeline uses. */
interface Corkable {
  cork?(): void;
  uncork?(): void;
}

type Query = (config: unknown, values?: unknown) => Promise<pg.QueryResult>;

/**
 * Sends a transaction's bookkeeping statements ahead, on a client in pg's pipeline mode: the
 * caller does not wait for `BEGIN`, a role switch or a savepoint to be answered, so the statement
 * after it goes out behind it and the two cost one round trip instead of two. A controller's pass
 * batch switches roles nine times; each was a round trip of its own.
 *
 * It is safe because each of them, should it fail, aborts the transaction: the server refuses
 * everything after it (SQLSTATE 25P02) until the rollback, so no statement runs in the wrong role
 * or outside the transaction. `BEGIN` cannot fail short of the connection failing, which fails
 * what follows it as well. The failure reported is the one of the statement sent ahead, by the
 * next statement the caller waits for; that includes a `COMMIT`, which the server answers with
 * `ROLLBACK`, not an error, in an aborted transaction. A successful rollback clears it.
 *
 * Outside {@link TransactionPipeline.during} the client is pg's own, not in pipeline mode.
 */
export class TransactionPipeline {
  readonly #send: Query;
  readonly #client: { pipeline: boolean };
  /** The client's socket, corked while statements sent ahead wait for the one behind them. */
  readonly #stream: Corkable | undefined;
  #corked = false;
  #active = false;
  #ahead: Promise<pg.QueryResult>[] = [];
  #failed: { error: unknown } | undefined;
  /** The role the statements written so far leave in force; undefined when not known. */
  #sentRole: string | undefined;

  private constructor(client: pg.PoolClient) {
    const original = client.query.bind(client) as unknown as (...args: unknown[]) => unknown;
    this.#send = original as Query;
    this.#client = client;
    this.#stream = (client as unknown as { connection?: { stream?: Corkable } }).connection?.stream;
    client.query = ((...args: unknown[]): unknown =>
      this.#active && args.length <= 2 && typeof args[1] !== "function"
        ? this.#query(args[0], args[1])
        : original(...args)) as typeof client.query;
  }

  static readonly #pipelines = new WeakMap<pg.PoolClient, TransactionPipeline>();

  /** Whether `tx` (a drizzle transaction or savepoint) runs on a pipeline now. */
  static activeFor(tx: unknown): boolean {
    const client = (tx as { _?: { session?: { client?: unknown } } })._?.session?.client;
    if (typeof client !== "object" || client === null) return false;
    const pipeline = TransactionPipeline.#pipelines.get(client as pg.PoolClient);
    return pipeline !== undefined && pipeline.#active;
  }

  /** The pipeline of a pooled client, made the first time. */
  static of(client: pg.PoolClient): TransactionPipeline {
    let pipeline = TransactionPipeline.#pipelines.get(client);
    if (!pipeline) {
      pipeline = new TransactionPipeline(client);
      TransactionPipeline.#pipelines.set(client, pipeline);
    }
    return pipeline;
  }

  /** Runs `fn`, a transaction on the client from its `BEGIN` to its end, sending ahead what it can. */
  async during<T>(fn: () => Promise<T>): Promise<T> {
    // pg's pipeline mode, for the transaction only: a statement is written as soon as it is
    // made, not after the one before is answered, and answers still come back in order to the
    // statement that asked. Reads, LISTEN and migrations keep pg's usual one at a time. The
    // transaction has had every answer by its end (its COMMIT or ROLLBACK is answered last).
    this.#client.pipeline = true;
    this.#active = true;
    this.#sentRole = undefined;
    try {
      return await fn();
    } finally {
      this.#client.pipeline = false;
      this.#active = false;
      this.#ahead = [];
      this.#failed = undefined;
    }
  }

  #query(config: unknown, values: unknown): Promise<pg.QueryResult> {
    const text =
      typeof config === "string"
        ? config
        : typeof config === "object" && config !== null && "text" in config
          ? config.text
          : undefined;
    const submittable =
      typeof config === "object" &&
      config !== null &&
      typeof (config as { submit?: unknown }).submit === "function";
    const params =
      values ??
      (typeof config === "object" && config !== null
        ? (config as { values?: unknown }).values
        : undefined);
    const send = (): Promise<pg.QueryResult> => this.#send(config, values);
    // A custom query object (a cursor, a stream) is its own handle, not a promise: pg's as is.
    if (submittable) return send();

    if (
      typeof text === "string" &&
      (!Array.isArray(params) || params.length === 0) &&
      AHEAD.test(text)
    ) {
      const role = SET_ROLE.exec(text)?.[1];
      if (role !== undefined) {
        // Already in force: nothing to send.
        if (role === this.#sentRole) return Promise.resolve(answered(text));
        this.#sentRole = role;
      }
      this.#ahead.push(this.#sendAhead(send));
      return Promise.resolve(answered(text));
    }

    const role = statementRole.getStore();
    if (role !== undefined && role !== this.#sentRole) {
      this.#sentRole = role;
      this.#ahead.push(this.#sendAhead(() => this.#send(`SET LOCAL ROLE ${role}`)));
    }

    const rollback = typeof text === "string" && ROLLBACK.test(text);
    // Back to the savepoint's role, which this does not track: the next statement switches.
    if (rollback) this.#sentRole = undefined;
    const ahead = this.#ahead;
    this.#ahead = [];
    const firstFailure = async (): Promise<{ error: unknown } | undefined> => {
      if (ahead.length === 0) return undefined;
      for (const outcome of await Promise.allSettled(ahead)) {
        if (outcome.status === "rejected") return { error: outcome.reason };
      }
      return undefined;
    };
    return send().then(
      async (result) => {
        const failure = await firstFailure();
        if (rollback) this.#failed = undefined;
        else if (failure) throw this.#fail(failure.error);
        return result;
      },
      async (error: unknown) => {
        const failure = await firstFailure();
        // A rollback that fails (the connection is gone) reports what made the transaction fail.
        if (rollback && this.#failed) throw this.#failed.error;
        throw this.#fail(failure ? failure.error : error);
      },
    );
  }

  /** Sends a statement whose answer is not waited for, corked behind the current one. */
  #sendAhead(send: () => Promise<pg.QueryResult>): Promise<pg.QueryResult> {
    // Held in the socket's buffer until the current run of promise jobs is over: the statement
    // the caller sends next (in its continuation) joins it, and both leave in one write.
    this.#cork();
    const sent = send();
    // Reported by the next statement waited for; never an unhandled rejection.
    sent.catch(() => undefined);
    return sent;
  }

  #cork(): void {
    const stream = this.#stream;
    if (this.#corked || !stream?.cork || !stream.uncork) return;
    stream.cork();
    this.#corked = true;
    process.nextTick(() => {
      this.#corked = false;
      stream.uncork?.();
    });
  }

  /** Notes the transaction's first failure, which a failed rollback reports, and returns `error`. */
  #fail(error: unknown): unknown {
    this.#failed ??= { error };
    return error;
  }
}
