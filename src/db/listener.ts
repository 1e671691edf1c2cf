// The LISTEN connection of a process: one connection of its own, outside the pool, that every
// channel a process follows shares. It comes back by itself when the connection is lost (the
// channels listened again), and offers a barrier: `sync()` resolves once every notification of a
// transaction committed before the call has been handed to the handlers.
import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Logger } from "../observability/index.js";

/** A connection of the listener and which one it is (the epoch, counted from 1). */
interface Connection {
  readonly client: pg.Client;
  readonly epoch: number;
}

interface Waiter {
  resolve(epoch: number): void;
  reject(err: unknown): void;
}

/** How long a barrier waits for its own notification before it gives up. */
export const SYNC_TIMEOUT_MS = 2_000;

/** The first and the longest wait before opening a lost connection again. */
const REOPEN_MS = { first: 500, max: 30_000 };

/**
 * One LISTEN connection shared by the channels of a process.
 *
 * A barrier is a notification of this connection's own on a channel only it listens on.
 * PostgreSQL queues notifications in commit order and delivers them in queue order, so when a
 * listener receives its own, every notification of a transaction that had committed before it
 * was sent has already been delivered (and handled: handlers run synchronously, in order).
 * Barriers are shared: a call waits for the next one sent after it, at most one is in flight.
 */
export class PgListener {
  readonly #open: () => pg.Client;
  readonly #log: Logger;
  readonly #handlers = new Map<string, Set<(payload: string) => void>>();
  /** Channel of the barriers: this process's alone. */
  readonly #syncChannel = `dv_sync_${randomUUID().replaceAll("-", "")}`;
  #connection: Connection | undefined;
  #opening: Promise<Connection> | undefined;
  #epochs = 0;
  /** While the last attempt to open failed: not before this time (ms) again, and why. */
  #refused: { until: number; err: unknown; waitMs: number } | undefined;
  #reopen: NodeJS.Timeout | undefined;
  #closed = false;
  #tokens = 0;
  /** The barrier in flight: its token, and what its arrival (or the connection's loss) settles. */
  #inFlight: { token: string; arrived: () => void; lost: (err: Error) => void } | undefined;
  #waiting: Waiter[] = [];
  #sending = false;

  constructor(open: () => pg.Client, log: Logger) {
    this.#open = open;
    this.#log = log;
  }

  /** Calls `handler` with the payload of every `NOTIFY` on `channel` until unlistened. */
  async listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    const { client } = await this.#connected();
    let set = this.#handlers.get(channel);
    if (!set) {
      set = new Set();
      this.#handlers.set(channel, set);
      try {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      } catch (err) {
        // A replica cannot LISTEN: leave no channel behind that looks subscribed.
        this.#handlers.delete(channel);
        throw err;
      }
    }
    const handlers = set;
    handlers.add(handler);
    return async () => {
      handlers.delete(handler);
      if (handlers.size === 0 && this.#handlers.get(channel) === handlers) {
        this.#handlers.delete(channel);
        await this.#connection?.client.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`);
      }
    };
  }

  /**
   * Resolves, with the epoch of the connection, once every notification of the transactions
   * committed before the call has been handled. The epoch changes when the connection was lost
   * and opened again: notifications may have been missed in between.
   *
   * @throws when there is no LISTEN connection (the database refuses it, or is unreachable), or
   *   the barrier does not come back within {@link SYNC_TIMEOUT_MS}.
   */
  sync(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (!this.#sending) void this.#sendBarriers();
    });
  }

  /** Closes the connection; no other is opened. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reopen);
    const current = this.#connection ?? (await this.#opening?.catch(() => undefined));
    this.#connection = undefined;
    await current?.client.end();
  }

  async #sendBarriers(): Promise<void> {
    this.#sending = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      try {
        const epoch = await this.#barrier();
        for (const w of batch) w.resolve(epoch);
      } catch (err) {
        for (const w of batch) w.reject(err);
      }
    }
    this.#sending = false;
  }

  async #barrier(): Promise<number> {
    const { client, epoch } = await this.#connected();
    const token = String(++this.#tokens);
    let timer: NodeJS.Timeout | undefined;
    // Usually back before the statement's answer; later when a transaction that queued its
    // notifications before ours is still committing (delivery stops at it until it has).
    const arrived = new Promise<void>((resolve, reject) => {
      this.#inFlight = { token, arrived: resolve, lost: reject };
      timer = setTimeout(
        () => reject(new Error(`the LISTEN barrier did not come back in ${SYNC_TIMEOUT_MS} ms`)),
        SYNC_TIMEOUT_MS,
      );
    });
    // Settled before it is awaited when the statement fails too: not an unhandled rejection.
    arrived.catch(() => undefined);
    try {
      await client.query("SELECT pg_notify($1, $2)", [this.#syncChannel, token]);
      await arrived;
    } finally {
      clearTimeout(timer);
      this.#inFlight = undefined;
    }
    return epoch;
  }

  /** The open connection, opening one when there is none (unless refused a moment ago). */
  async #connected(): Promise<Connection> {
    if (this.#closed) throw new Error("the LISTEN connection is closed");
    if (this.#connection) return this.#connection;
    if (this.#refused && Date.now() < this.#refused.until) throw this.#refused.err;
    this.#opening ??= this.#openConnection().finally(() => {
      this.#opening = undefined;
    });
    return this.#opening;
  }

  async #openConnection(): Promise<Connection> {
    const client = this.#open();
    const connection = { client, epoch: ++this.#epochs };
    client.on("notification", (msg) => {
      if (msg.channel === this.#syncChannel) {
        const inFlight = this.#inFlight;
        if (inFlight !== undefined && inFlight.token === msg.payload) inFlight.arrived();
        return;
      }
      for (const handler of this.#handlers.get(msg.channel) ?? []) handler(msg.payload ?? "");
    });
    client.on("error", (err) => {
      this.#log.warn({ err }, "PostgreSQL LISTEN connection failed");
      this.#lost(connection);
    });
    client.on("end", () => this.#lost(connection));
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#syncChannel)}`);
      for (const channel of this.#handlers.keys())
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      const waitMs = Math.min(2 * (this.#refused?.waitMs ?? REOPEN_MS.first / 2), REOPEN_MS.max);
      this.#refused = { until: Date.now() + waitMs, err, waitMs };
      throw err;
    }
    this.#refused = undefined;
    if (this.#closed) {
      await client.end();
      throw new Error("the LISTEN connection is closed");
    }
    this.#connection = connection;
    return connection;
  }

  /** Forgets a lost connection and, while channels are followed, opens another soon. */
  #lost(connection: Connection): void {
    if (this.#connection !== connection) return;
    this.#connection = undefined;
    this.#inFlight?.lost(new Error("the LISTEN connection was lost"));
    void connection.client.end().catch(() => undefined);
    if (!this.#closed && this.#handlers.size > 0) this.#scheduleReopen(REOPEN_MS.first);
  }

  #scheduleReopen(waitMs: number): void {
    clearTimeout(this.#reopen);
    this.#reopen = setTimeout(() => {
      this.#connected().then(
        () => this.#log.info("PostgreSQL LISTEN connection open again"),
        () => this.#scheduleReopen(Math.min(2 * waitMs, REOPEN_MS.max)),
      );
    }, waitMs);
    this.#reopen.unref();
  }
}
