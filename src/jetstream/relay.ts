import { type JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { Counter, Gauge } from "prom-client";
import type { OutboxStore, PendingMessage, PublishOutcome } from "../contexts/runtime/index.js";
import { OUTBOX_CHANNEL } from "../contexts/runtime/index.js";
import type { Database, Unlisten } from "../db/index.js";
import {
  inSpan,
  type Logger,
  metricOnce,
  type Registry,
  SpanKind,
  traceparentOf,
} from "../observability/index.js";
import { siteSubject } from "../messaging/index.js";
import { HEADERS } from "../messaging/index.js";

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  readonly db: Database;
  readonly outbox: OutboxStore;
  readonly js: JetStreamClient;
  readonly log: Logger;
  readonly metrics: Registry;
  /** Messages claimed and published together. */
  readonly batchSize?: number;
  /** Poll interval when no notification comes (NOTIFY is only a wake-up). */
  readonly pollMs?: number;
  /** How long to wait for JetStream's ack of one publish. */
  readonly publishTimeoutMs?: number;
  /**
   * After a pass that sent something, how long to let more rows gather before the next claim:
   * under load each claim (a transaction of four statements and a commit) then carries several
   * messages instead of about one. An idle relay claims as soon as it is woken.
   */
  readonly lingerMs?: number;
  /**
   * Datacenters with NATS servers of their own behind the site link: a command for one of them
   * is published on its coordination subject (`dv.site.<datacenter>.…`), which only its
   * JetStream stores. Empty: every command is published as it is.
   */
  readonly remoteDatacenters?: readonly string[];
  /**
   * How long a published event stays in the outbox after JetStream acknowledged it: longer than
   * nats-server's `sync_interval`, so that an event NATS loses in a crash is still here to be
   * sent again (ADR 0012). Commands stay until a worker records them done.
   */
  readonly retainMs?: number;
  /** The connection whose reconnects mean "send every kept row again" (default: `js`'s own). */
  readonly nc?: Pick<NatsConnection, "status">;
}

/**
 * The longest wait between two attempts to publish a command for another datacenter while the
 * site link is down: how soon after the heal the waiting commands go (ADR 0007).
 */
export const SITE_RETRY_MAX_MS = 2_000;

/**
 * Publishes the outbox: claims due rows (`FOR UPDATE SKIP LOCKED`, so several relays share the
 * work), publishes them to JetStream at once with their envelope id as `Nats-Msg-Id`, waits for
 * the acks, and marks what was stored published — in one transaction. Woken by
 * `LISTEN dv_outbox`, with a poll as a fallback. When NATS is down the rows wait in PostgreSQL
 * with a growing back-off and drain once it is back. A relay killed between publish and commit
 * re-publishes the same ids; JetStream's duplicate window (or the consumers' inbox) drops them.
 * Published rows are kept (commands until done, events for `retainMs`) and sent again when the
 * relay (re)connects: NATS may fsync periodically and lose its last writes in a crash (ADR 0012).
 */
export class OutboxRelay {
  readonly #options: Required<
    Omit<
      OutboxRelayOptions,
      "db" | "outbox" | "js" | "log" | "metrics" | "remoteDatacenters" | "nc"
    >
  > &
    OutboxRelayOptions;
  readonly #published: Counter<"subject_family">;
  readonly #failures: Counter;
  readonly #remote: ReadonlySet<string>;
  #running = false;
  #loop: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  /** A notification came since the last claim began: there may be rows it did not see. */
  #pending = false;
  #unlisten: Unlisten | undefined;

  constructor(options: OutboxRelayOptions) {
    this.#options = {
      batchSize: 256,
      pollMs: 1000,
      publishTimeoutMs: 5000,
      lingerMs: 5,
      retainMs: 10_000,
      ...options,
    };
    this.#remote = new Set(options.remoteDatacenters ?? []);
    this.#published = metricOnce(
      options.metrics,
      "dataverket_outbox_published_total",
      () =>
        new Counter({
          name: "dataverket_outbox_published_total",
          help: "Messages the outbox relay published and JetStream stored",
          labelNames: ["subject_family"] as const,
          registers: [options.metrics],
        }),
    );
    this.#failures = metricOnce(
      options.metrics,
      "dataverket_outbox_publish_failures_total",
      () =>
        new Counter({
          name: "dataverket_outbox_publish_failures_total",
          help: "Publishes that failed and will be retried from PostgreSQL",
          registers: [options.metrics],
        }),
    );
    const outbox = options.outbox;
    if (!options.metrics.getSingleMetric("dataverket_outbox_backlog"))
      new Gauge({
        name: "dataverket_outbox_backlog",
        help: "Messages waiting in the outbox",
        registers: [options.metrics],
        async collect() {
          this.set((await outbox.backlog()).count);
        },
      });
    if (!options.metrics.getSingleMetric("dataverket_outbox_kept"))
      new Gauge({
        name: "dataverket_outbox_kept",
        help: "Published messages kept in the outbox: commands not done yet, events within the retention",
        registers: [options.metrics],
        async collect() {
          this.set((await outbox.backlog()).kept);
        },
      });
    if (!options.metrics.getSingleMetric("dataverket_outbox_oldest_age_seconds"))
      new Gauge({
        name: "dataverket_outbox_oldest_age_seconds",
        help: "Age of the oldest message waiting in the outbox",
        registers: [options.metrics],
        async collect() {
          this.set((await outbox.backlog()).oldestAgeSeconds);
        },
      });
  }

  /**
   * Starts relaying until {@link stop}. What the outbox kept is sent again first, and again
   * whenever the connection to NATS is re-established: the server may have restarted without
   * what it had acknowledged but not yet synced to disk.
   */
  async start(): Promise<void> {
    this.#running = true;
    await this.#resendKept("the relay started");
    this.#unlisten = await this.#options.db.listen(OUTBOX_CHANNEL, () => this.#notified());
    this.#loop = this.#run();
    const nc = this.#options.nc ?? (this.#options.js as { nc?: Pick<NatsConnection, "status"> }).nc;
    if (nc) void this.#watch(nc);
  }

  async #watch(nc: Pick<NatsConnection, "status">): Promise<void> {
    for await (const status of nc.status()) {
      if (!this.#running) return;
      if (status.type !== "reconnect") continue;
      await this.#resendKept(`reconnected to ${status.server}`);
      this.#notified();
    }
  }

  async #resendKept(why: string): Promise<void> {
    try {
      const count = await this.#options.outbox.resendPublished();
      if (count > 0)
        this.#options.log.info({ count, why }, "sending the messages the outbox kept again");
    } catch (err) {
      this.#options.log.warn({ err, why }, "could not mark the kept messages to be sent again");
    }
  }

  /** Stops after the batch in flight. */
  async stop(): Promise<void> {
    this.#running = false;
    this.#wake?.();
    await this.#loop;
    await this.#unlisten?.();
  }

  /** Relays until the outbox has nothing due; returns how many were sent (tests, benchmarks). */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const sent = await this.#options.outbox.relay(this.#options.batchSize, (rows) =>
        this.#publish(rows),
      );
      total += sent;
      if (sent === 0) return total;
    }
  }

  /** Rows may be due: claim now if the relay waits, else after the claim in flight. */
  #notified(): void {
    this.#pending = true;
    this.#wake?.();
  }

  async #run(): Promise<void> {
    const { log, pollMs, batchSize, retainMs, lingerMs } = this.#options;
    let sweptAt = performance.now();
    while (this.#running) {
      let sent = 0;
      // Cleared before the claim: a notification during it (a commit the claim's snapshot did
      // not see) makes the next pass claim again instead of waiting for the poll.
      this.#pending = false;
      try {
        sent = await this.#options.outbox.relay(batchSize, (rows) => this.#publish(rows));
        // Published events past their retention go, a few times per retention: one statement.
        if (performance.now() - sweptAt > retainMs / 4) {
          sweptAt = performance.now();
          await this.#options.outbox.sweep(retainMs);
        }
      } catch (err) {
        log.warn({ err }, "outbox relay pass failed; retrying");
      }
      if (sent >= batchSize || !this.#running) continue;
      if (sent > 0 && lingerMs > 0) await this.#wait(lingerMs, false);
      // Nothing committed since the claim began: wait to be woken (the poll, should a
      // notification be lost with its connection).
      if (!this.#pending && this.#running) await this.#wait(pollMs, true);
    }
  }

  /** Waits `ms`; a notification ends the wait early when `wakeable`. */
  async #wait(ms: number, wakeable: boolean): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      if (wakeable) this.#wake = done;
    });
    this.#wake = undefined;
  }

  /** Where a row goes: its own subject, or a remote site's coordination subject. */
  #route(row: PendingMessage): { subject: string; site?: string } {
    const site = row.datacenterId;
    if (site !== null && this.#remote.has(site)) {
      const subject = siteSubject(row.subject, site);
      if (subject) return { subject, site };
    }
    return { subject: row.subject };
  }

  async #publish(rows: PendingMessage[]): Promise<PublishOutcome> {
    const { js, publishTimeoutMs } = this.#options;
    const routes = rows.map((row) => this.#route(row));
    const results = await Promise.allSettled(
      rows.map((row, i) =>
        // One span per publish, a child of the span that wrote the row; the consumer's span
        // becomes this one's child through the header.
        inSpan(
          `publish ${row.subject}`,
          {
            kind: SpanKind.PRODUCER,
            parent: row.headers[HEADERS.traceparent] ?? null,
            attributes: {
              "messaging.system": "nats",
              "messaging.operation.type": "publish",
              "messaging.destination.name": routes[i]?.subject ?? row.subject,
              "messaging.message.id": row.id,
              "messaging.outbox.attempts": row.attempts,
            },
          },
          (span) => {
            const h = natsHeaders();
            for (const [k, v] of Object.entries(row.headers)) h.set(k, v);
            const traceparent = traceparentOf(span);
            if (traceparent) h.set(HEADERS.traceparent, traceparent);
            return js.publish(routes[i]?.subject ?? row.subject, row.payload, {
              msgID: row.id,
              headers: h,
              timeout: publishTimeoutMs,
            });
          },
        ),
      ),
    );
    const sent: string[] = [];
    const failed: { id: string; error: string; retryInMs: number }[] = [];
    let firstFailures = 0;
    const families = new Map<string, number>();
    results.forEach((result, i) => {
      const row = rows[i] as PendingMessage;
      if (result.status === "fulfilled") {
        sent.push(row.id);
        const family = row.subject.split(".", 3).join(".");
        families.set(family, (families.get(family) ?? 0) + 1);
      } else {
        const reason =
          result.reason instanceof Error ? result.reason.message : String(result.reason);
        const site = routes[i]?.site;
        // A command for another site names it: that is what its task reports while it waits.
        const error = site
          ? `datacenter ${site} is not reachable over the site link (${reason}); the command waits here and is sent once it is`
          : reason;
        failed.push({
          id: row.id,
          error,
          // Another site's command is refused at once while the link is down (no stream
          // answers), so trying again costs little; it is tried every SITE_RETRY_MAX_MS at most
          // and goes within that of the heal, instead of after a back-off of up to 30 s.
          retryInMs: Math.min(
            site ? SITE_RETRY_MAX_MS : 30_000,
            250 * 2 ** Math.min(row.attempts, 7),
          ),
        });
        if (row.attempts === 0) firstFailures++;
        this.#failures.inc();
      }
    });
    for (const [family, count] of families) this.#published.inc({ subject_family: family }, count);
    // Warned when messages start waiting; their retries (every 2 s during a long cut of the site
    // link) are logged at debug.
    if (failed.length > 0) {
      this.#options.log[firstFailures > 0 ? "warn" : "debug"](
        { failed: failed.length, sent: sent.length, error: failed[0]?.error },
        "publishing to JetStream failed; the messages wait in the outbox",
      );
    }
    return { sent, failed };
  }
}
