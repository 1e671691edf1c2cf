// A TCP fault proxy on loopback between a client under test and a real server. It forwards
// bytes faithfully until told otherwise; then it can
//   cut()            reset every connection and refuse new ones (a partition), until heal();
//   fault("delay")   hold every chunk for `delayMs` before passing it on (a slow link);
//   fault("blackhole") accept and keep connections, but drop every byte both ways (packets lost,
//                    no FIN, no RST: the peers find out only by their own timeouts);
//   fault("reset")   reset every connection, and every new one as soon as it opens;
//   fault("half-open") pass what the client sends, drop everything the server answers (one
//                    direction dead, the other alive: the client's writes "succeed");
//   heal()           forward faithfully again (connections that survived carry on).
import { createConnection, createServer, type Server, type Socket } from "node:net";

export type Fault = "delay" | "blackhole" | "reset" | "half-open";

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
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let state: TcpRelay["state"] = "forward";
  let delayMs = 0;
  let accepted = 0;

  // Passes a chunk on as the current state says. Chunks of one direction stay in order: a
  // delayed chunk waits for the ones before it.
  const forwarder = (to: Socket, direction: "up" | "down") => {
    let tail = Promise.resolve();
    return (chunk: Buffer) => {
      if (state === "blackhole" || (state === "half-open" && direction === "down")) return;
      if (state === "delay") {
        const wait = delayMs;
        tail = tail.then(
          () =>
            new Promise<void>((resolve) =>
              setTimeout(() => {
                if (!to.destroyed) to.write(chunk);
                resolve();
              }, wait),
            ),
        );
        return;
      }
      tail = tail.then(() => {
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
      const pair = { client, upstream };
      pairs.add(pair);
      client.on("data", forwarder(upstream, "up"));
      upstream.on("data", forwarder(client, "down"));
      const end = () => {
        pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      // A peer's FIN or RST reaches the other side, except while the link is dead.
      client.on("end", () => (state === "blackhole" ? undefined : upstream.end()));
      upstream.on("end", () =>
        state === "blackhole" || state === "half-open" ? undefined : client.end(),
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

  let server: Server | undefined = makeServer();
  const port = await listen(server, 0);
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
      state = fault;
      delayMs = options.delayMs ?? 500;
      if (fault === "reset") resetAll();
    },
    async heal() {
      state = "forward";
      await reopen();
    },
    close: closeServer,
  };
}
