import type { Command } from "commander";
import { parseSubject } from "../../messaging/index.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { withNats, withNatsOption } from "../nats.js";

interface TailFlags {
  nats?: string;
  json?: boolean;
  count?: string;
}

/**
 * Adds `dv tail [subjects...]`: prints the messages published on NATS subjects as they pass
 * (commands, domain events, task events), one line each or as JSON lines. It only listens:
 * workers still receive every command.
 */
export function registerTail(program: Command): void {
  withNatsOption(
    program
      .command("tail [subjects...]")
      .description("print messages on NATS subjects as they pass (default: every dv.> subject)")
      .option("--json", "print each message's envelope as one JSON line")
      .option("--count <n>", "exit after this many messages")
      .addHelpText(
        "after",
        "\nExamples:\n  npx dv tail 'dv.nett.cmd.>'            # commands to the nett worker\n  npx dv tail 'dv.task.evt.>' --json     # task lifecycle events\n",
      ),
  ).action(async (subjects: string[], flags: TailFlags) => {
    const wanted = subjects.length > 0 ? subjects : ["dv.>"];
    for (const subject of wanted) {
      if (!subject.startsWith("dv.") || /\s/.test(subject))
        throw new CliError(
          `"${subject}" is not a dv subject (like dv.nett.cmd.> or dv.task.evt.succeeded)`,
          ExitCode.Usage,
        );
    }
    const limit = flags.count === undefined ? Infinity : Number(flags.count);
    if (!(limit === Infinity || (Number.isInteger(limit) && limit > 0)))
      throw new CliError(`--count "${flags.count}" must be a whole number above 0`, ExitCode.Usage);
    await withNats(flags.nats, "tail", async (nc) => {
      let seen = 0;
      const done = new Promise<void>((resolve) => {
        const stop = (): void => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        for (const subject of wanted) {
          nc.subscribe(subject, {
            callback: (err, msg) => {
              if (err || seen >= limit) return;
              // JetStream's own API and acks travel on $JS/_INBOX subjects, never on dv.>.
              let envelope: Record<string, unknown> = {};
              try {
                envelope = msg.json();
              } catch {
                envelope = { raw: msg.string() };
              }
              seen++;
              if (flags.json) {
                process.stdout.write(`${JSON.stringify({ subject: msg.subject, envelope })}\n`);
              } else {
                const family = parseSubject(msg.subject)?.family ?? "?";
                const data = (envelope.data ?? {}) as Record<string, unknown>;
                const about = [data.resource_kind, data.resource_id, data.step]
                  .filter((v) => typeof v === "string")
                  .join(" ");
                const text = (v: unknown, otherwise: string): string =>
                  typeof v === "string" ? v : otherwise;
                const line = [
                  text(envelope.time, new Date().toISOString()),
                  msg.subject,
                  text(envelope.type, family),
                  about,
                  `correlation=${text(envelope.correlation_id, "-")}`,
                ];
                process.stdout.write(`${line.join("  ")}\n`);
              }
              if (seen >= limit) resolve();
            },
          });
        }
        // Make sure the server has the subscriptions before anyone relies on them.
        void nc.flush().then(() => process.stderr.write(`listening on ${wanted.join(", ")}\n`));
      });
      await done;
    });
  });
}
