// A TCP relay on loopback between a client under test and a real server, that the test can cut
// (every connection reset, new ones refused) and heal: a network partition on one machine.
import { createConnection, createServer, type Server, type Socket } from "node:net";

export interface TcpRelay {
  readonly port: number;
  /** Resets every connection and refuses new ones until {@link heal}. */
  cut(): Promise<void>;
  heal(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpRelay(
  targetPort: number,
  targetHost = "127.0.0.1",
): Promise<TcpRelay> {
  const sockets = new Set<Socket>();
  const track = (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  };
  const makeServer = (): Server =>
    createServer((client) => {
      const upstream = createConnection({ port: targetPort, host: targetHost });
      track(client);
      track(upstream);
      client.pipe(upstream).on("error", () => client.destroy());
      upstream.pipe(client).on("error", () => upstream.destroy());
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
  const listen = (server: Server, port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : port);
      });
    });
  let server: Server | undefined = makeServer();
  const port = await listen(server, 0);
  const stop = async () => {
    const s = server;
    server = undefined;
    for (const socket of sockets) socket.resetAndDestroy();
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  return {
    port,
    cut: stop,
    async heal() {
      if (server) return;
      server = makeServer();
      await listen(server, port);
    },
    close: stop,
  };
}
