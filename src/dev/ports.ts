import { createServer } from "node:net";

/** Resolves true when nothing listens on `host:port`. */
export function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(false);
      else reject(err);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Ports {@link freePort} hands out: below the kernel's range for outgoing connections (Linux's
 * default is 32768–60999), so that no outgoing connection can hold the port between the pick and
 * the listener that takes it, and below the fixed ports of `hack/` (22379 and up).
 */
export const FREE_PORTS = { from: 10_000, to: 20_000 } as const;

/**
 * A port on `host` that nothing listens on now, picked at random from {@link FREE_PORTS}.
 * Another process may take it before the caller does; the random pick keeps that unlikely.
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const span = FREE_PORTS.to - FREE_PORTS.from;
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FREE_PORTS.from + Math.floor(Math.random() * span);
    if (await portIsFree(port, host)) return port;
  }
  throw new Error(
    `no free port on ${host} in ${FREE_PORTS.from}–${FREE_PORTS.to - 1} after 100 tries`,
  );
}
