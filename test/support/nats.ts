// A nats-server of its own for a test file: spawned from the pinned binary hack/nats.sh built,
// on a free port with its own JetStream store, so streams never collide between test files.
// Chaos scenarios can freeze it, image its store and put an older image back (a machine crash
// that loses what was not synced to disk).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
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
  /** The JetStream store directory (the server's configuration and pid file are in it too). */
  readonly storeDir: string;
  /** The running server's process id; undefined while it is down. */
  readonly pid: number | undefined;
  /** SIGSTOP: the server stops answering and writing, its connections stay open. */
  freeze(): void;
  /** SIGCONT after {@link freeze}. */
  thaw(): void;
  /**
   * Copies the store directory (`cp -a`) and returns where the copy is: a point-in-time image of
   * what the server had written, when taken while it is frozen (or down).
   */
  snapshotStore(): string;
  /**
   * Replaces the store directory with an image from {@link snapshotStore}: everything written
   * after the image is gone. Only while the server is down.
   */
  restoreStore(snapshot: string): void;
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
    // As the product connects (src/jetstream/connect.ts).
    noAsyncTraces: true,
  });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const images: string[] = [];
  const running = (): EmbeddedNats => {
    if (!server) throw new Error("the test nats-server is not running");
    return server;
  };
  return {
    url: server.url,
    nc,
    js,
    jsm,
    storeDir,
    get pid() {
      return server?.pid;
    },
    freeze() {
      process.kill(running().pid, "SIGSTOP");
    },
    thaw() {
      process.kill(running().pid, "SIGCONT");
    },
    snapshotStore() {
      const image = mkdtempSync(join(tmpdir(), "dv-nats-image-"));
      images.push(image);
      execFileSync("cp", ["-a", `${storeDir}/.`, image]);
      return image;
    },
    restoreStore(snapshot) {
      if (server) throw new Error("stop or kill the test nats-server before restoring its store");
      for (const entry of readdirSync(storeDir))
        rmSync(join(storeDir, entry), { recursive: true, force: true });
      execFileSync("cp", ["-a", `${snapshot}/.`, storeDir]);
    },
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
      // A server a failed test left frozen would not stop on SIGTERM.
      try {
        if (server) process.kill(server.pid, "SIGCONT");
      } catch {
        // It has exited already.
      }
      await server?.stop();
      for (const image of images) rmSync(image, { recursive: true, force: true });
    },
  };
}
