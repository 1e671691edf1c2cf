// A TCP fault proxy on loopback between a client under test and a real server. It forwards
// bytes faithfully until told otherwise; then it can
//   cut()              reset every connection and refuse new ones (a partition), until heal();
//   fault("delay")     hold every chunk for `delayMs` before passing it on (a slow link);
//   fault("blackhole") pass nothing either way, without FIN or RST: bytes wait (as TCP would
//                      retransmit them) and go through, in order, once healed — unless a peer's
//                      own timeout gave up on the connection first;
//   fault("reset")     reset every connection, and every new one as soon as it opens;
//   fault("half-open") pass what the client sends, drop what the server answers: the client's
//                      writes "succeed" into a connection whose other half is dead. Such a
//                      connection cannot carry on once healed; it is reset then, as the server
//                      would answer a segment of a connection it no longer knows;
//   heal()             forward faithfully again (connections that survived carry on).
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { freePort } from "../../src/dev/index.js";

export type Fault = "delay" | "blackhole" | "reset" | "half-open";

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Lost bytes in a half-open fault: it cannot go on. */
  broken: boolean;
}

export interface TcpRelay {
  readonly port: number;
  /** Resets every connection and refuses new ones until {@link heal}. */
  cut(): Promise<void>;
  /** Injects `fault` on every connection, open and new, until {@link heal}. */
  fault(fault: Fault, options?: { delayMs?: number }): Promise<void>;
  /** What the proxy does now. */
  readonly state: "forward" | "cut" | Fault;
  /** Connections accepted so far. */
  readonly accepted: number;
  heal(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(
  targetPort: number,
  targetHost = "127.0.0.1",
): Promise<TcpRelay> {
  const pairs = new Set<Pair>();
  let state: TcpRelay["state"] = "forward";
  let delayMs = 0;
  let accepted = 0;
  // Resolved when the link comes back from a blackhole.
  let unblocked: Promise<void> = Promise.resolve();
  let unblock: () => void = () => undefined;

  // Passes a chunk on as the current state says. Chunks of one direction stay in order: a
  // delayed or held chunk waits for the ones before it.
  const forwarder = (pair: Pair, to: Socket, direction: "up" | "down") => {
    let tail = Promise.resolve();
    return (chunk: Buffer) => {
      if (state === "half-open" && direction === "down") {
        pair.broken = true;
        return;
      }
      const wait = state === "delay" ? delayMs : 0;
      const held = state === "blackhole" ? unblocked : undefined;
      tail = tail
        .then(() => held)
        .then(() => (wait > 0 ? new Promise<void>((r) => setTimeout(r, wait)) : undefined))
        .then(() => {
          if (!to.destroyed) to.write(chunk);
        });
    };
  };

  const makeServer = (): Server =>
    createServer((client) => {
      accepted++;
      if (state === "reset") {
        client.resetAndDestroy();
        return;
      }
      const upstream = createConnection({ port: targetPort, host: targetHost });
      const pair: Pair = { client, upstream, broken: false };
      pairs.add(pair);
      client.on("data", forwarder(pair, upstream, "up"));
      upstream.on("data", forwarder(pair, client, "down"));
      const end = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      // A peer's FIN or RST reaches the other side, except while the link is dead.
      // A FIN follows the bytes before it (held in a blackhole, dropped when half-open).
      client.on("end", () => void unblocked.then(() => upstream.end()));
      upstream.on("end", () =>
        state === "half-open" ? undefined : void unblocked.then(() => client.end()),
      );
      client.on("close", end);
      upstream.on("close", end);
      client.on("error", end);
      upstream.on("error", end);
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  const resetAll = () => {
    for (const { client, upstream } of pairs) {
      client.resetAndDestroy();
      upstream.resetAndDestroy();
    }
    pairs.clear();
  };

  // A port below the kernel's range for outgoing connections: the relay closes it while the link
  // is cut and takes it again on the heal, and an outgoing connection must not hold it meanwhile.
  let server: Server | undefined = makeServer();
  let port = 0;
  for (let attempt = 0; port === 0; attempt++) {
    try {
      port = await listen(server, await freePort());
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE" || attempt >= 20) throw err;
      server = makeServer();
    }
  }
  const closeServer = async () => {
    const s = server;
    server = undefined;
    resetAll();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  const reopen = async () => {
    if (server) return;
    server = makeServer();
    await listen(server, port);
  };
  return {
    port,
    get state() {
      return state;
    },
    get accepted() {
      return accepted;
    },
    async cut() {
      state = "cut";
      await closeServer();
    },
    async fault(fault, options = {}) {
      await reopen();
      if (fault === "blackhole" && state !== "blackhole")
        unblocked = new Promise<void>((resolve) => (unblock = resolve));
      else if (fault !== "blackhole") unblock();
      state = fault;
      delayMs = options.delayMs ?? 500;
      if (fault === "reset") resetAll();
    },
    async heal() {
      state = "forward";
      unblock();
      for (const pair of pairs) {
        if (!pair.broken) continue;
        pair.client.resetAndDestroy();
        pair.upstream.resetAndDestroy();
        pairs.delete(pair);
      }
      await reopen();
    },
    close: closeServer,
  };
}
