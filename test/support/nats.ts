// A nats-server of its own for a test file: spawned from the pinned binary hack/nats.sh built,
// on a free port with its own JetStream store, so streams never collide between test files.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type EmbeddedNats, freePort, startEmbeddedNats } from "../../src/dev/index.js";
import { packageRoot } from "../../src/meta/index.js";
import { createLogger } from "../../src/observability/index.js";

const silent = createLogger({ level: "silent", service: "test-nats", datacenterId: "dc1" });

/** A private nats-server and a client connected to it. */
export interface TestNats {
  readonly url: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Stops the server (clients start reconnecting). */
  stopServer(): Promise<void>;
  /** Kills the server with SIGKILL (no shutdown of its own: what it had not fsynced is gone). */
  killServer(): Promise<void>;
  /** Starts it again on the same port with the same store. */
  startServer(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a nats-server for this test file and connects to it. */
export async function startTestNats(): Promise<TestNats> {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "dv-nats-"));
  const options = {
    port,
    storeDir,
    log: silent,
    repoRoot: packageRoot(),
    searchPath: process.env.PATH ?? "",
  };
  let server: EmbeddedNats | undefined = await startEmbeddedNats(options);
  const nc = await connect({
    servers: server.url,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
  });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  return {
    url: server.url,
    nc,
    js,
    jsm,
    async stopServer() {
      await server?.stop();
      server = undefined;
    },
    async killServer() {
      const pid = server?.pid;
      if (pid === undefined) return;
      process.kill(pid, "SIGKILL");
      await server?.stop();
      server = undefined;
    },
    async startServer() {
      server = await startEmbeddedNats(options);
    },
    async close() {
      await nc.close();
      await server?.stop();
    },
  };
}
