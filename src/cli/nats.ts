import type { NatsConnection } from "@nats-io/transport-node";
import { type Command, Option } from "commander";
import { createLogger } from "../observability/index.js";
import { currentContext } from "./context.js";

/** Where `dv sim` and `dv tail` connect when neither a flag, NATS_URL nor the context says. */
export const DEFAULT_NATS_URL = "nats://127.0.0.1:4222";

/** Adds `--nats <urls>` (`NATS_URL`; otherwise the current context's, as `dv dev` records it). */
export function withNatsOption(command: Command): Command {
  return command.addOption(
    new Option(
      "--nats <urls>",
      `NATS server URLs, comma-separated (default: the current context's nats, else ${DEFAULT_NATS_URL})`,
    ).env("NATS_URL"),
  );
}

/** The NATS servers to use, and what named them (for the error when none answers). */
export async function resolveNats(
  flag: string | undefined,
): Promise<{ urls: string; source: string }> {
  if (flag !== undefined) return { urls: flag, source: "--nats (NATS_URL)" };
  const context = await currentContext();
  if (context?.nats !== undefined)
    return { urls: context.nats, source: `the nats of context "${context.name}"` };
  return { urls: DEFAULT_NATS_URL, source: "the default --nats" };
}

/**
 * Connects for one CLI command, runs `fn` and closes the connection. `urls` is the `--nats` flag
 * (or NATS_URL); without it, the current context's NATS servers, then {@link DEFAULT_NATS_URL}.
 *
 * @throws {StartupError} naming where the URLs came from when no server answers.
 */
export async function withNats<T>(
  urls: string | undefined,
  name: string,
  fn: (nc: NatsConnection) => Promise<T>,
): Promise<T> {
  const { connectNats } = await import("../jetstream/index.js");
  const target = await resolveNats(urls);
  const nc = await connectNats({
    servers: target.urls,
    name: `dv-cli-${name}`,
    log: createLogger({ level: "silent", service: "dv-cli", datacenterId: "-" }),
    source: target.source,
    timeoutMs: 3_000,
  });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}
