import type { NatsConnection } from "@nats-io/transport-node";
import { type Command, Option } from "commander";
import { createLogger } from "../observability/index.js";

/** Adds `--nats <urls>` (`NATS_URL`; `dv dev` serves nats://127.0.0.1:4222). */
export function withNatsOption(command: Command): Command {
  return command.addOption(
    new Option("--nats <urls>", "NATS server URLs, comma-separated")
      .env("NATS_URL")
      .default("nats://127.0.0.1:4222"),
  );
}

/**
 * Connects for one CLI command, runs `fn` and closes the connection.
 *
 * @throws {StartupError} naming `--nats` when no server answers.
 */
export async function withNats<T>(
  urls: string,
  name: string,
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const { connectNats } = await import("../jetstream/index.js");
  const nc = await connectNats({
    servers: urls,
    name: `dv-cli-${name}`,
    log: createLogger({ level: "silent", service: "dv-cli", datacenterId: "-" }),
    source: "--nats (NATS_URL)",
    timeoutMs: 3_000,
  });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}
