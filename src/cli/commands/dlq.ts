import { type Command, Option } from "commander";
import { type ApiTarget, callApi, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { age, type OutputFormat, print, table, withOutputOption } from "../output.js";

interface DeadLetter {
  id: string;
  state: string;
  service: string;
  subject: string;
  type: string;
  reason: string;
  deliveryCount: number;
  taskId: string | null;
  correlationId: string;
  createdAt: string;
  replayMessageId: string | null;
}

type Flags = ApiTarget & { output: OutputFormat };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function checkId(id: string): string {
  if (!UUID.test(id))
    throw new CliError(
      `"${id}" is not a dead-letter id (a UUID, as dv dlq list shows it)`,
      ExitCode.Usage,
    );
  return id;
}

const short = (text: string, max: number) =>
  text.length <= max ? text : `${text.slice(0, max - 1)}…`;

/** Adds `dv dlq list|show|replay|discard`: the dead-letter store, through the API (operators). */
export function registerDlq(program: Command): void {
  const dlq = program
    .command("dlq")
    .description(
      "dead letters: work the platform gave up on, until an operator replays or discards it",
    )
    .addHelpText(
      "after",
      "\nThese commands call the API as an operator. In dev:\n  export DV_TOKEN=$(npx dv token create --role operator)\n",
    );

  withOutputOption(
    withApiOptions(
      dlq
        .command("list")
        .description("list dead letters, oldest first")
        .option("--state <state>", "open, replayed or discarded (all when absent)", "open")
        .option("--all", "every state")
        .option(
          "--service <service>",
          "only this domain service (maskin, nett, plattform, objekt)",
        ),
    ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  npx dv dlq list\n  npx dv dlq list --all --service nett -o json\n",
    )
    .action(async (flags: Flags & { state: string; all?: boolean; service?: string }) => {
      const query = new URLSearchParams({ limit: "500" });
      if (!flags.all) query.set("state", flags.state);
      if (flags.service) query.set("service", flags.service);
      const page = await callApi<{ items: DeadLetter[] }>(
        flags,
        "GET",
        `/dead-letters?${query.toString()}`,
      );
      print(flags.output, { items: page.items }, () =>
        page.items.length === 0
          ? `No ${flags.all ? "" : `${flags.state} `}dead letters.\n`
          : table(
              ["id", "state", "service", "subject", "task", "age", "reason"],
              page.items.map((d) => [
                d.id,
                d.state,
                d.service,
                d.subject,
                d.taskId ?? "-",
                age(d.createdAt),
                short(d.reason, 80),
              ]),
            ),
      );
    });

  withApiOptions(
    dlq
      .command("show <id>")
      .description("show a dead letter: its message, every error, its task")
      .addOption(
        new Option("-o, --output <format>", "how to print it")
          .choices(["yaml", "json"])
          .default("yaml"),
      ),
  )
    .addHelpText(
      "after",
      "\nExample:\n  npx dv dlq show 0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f -o yaml\n",
    )
    .action(async (id: string, flags: Flags) => {
      const letter = await callApi<DeadLetter>(flags, "GET", `/dead-letters/${checkId(id)}`);
      print(flags.output, letter, () => "");
    });

  for (const action of ["replay", "discard"] as const) {
    withApiOptions(
      dlq
        .command(`${action} <id>`)
        .description(
          action === "replay"
            ? "send the message again (fix the cause first); its task goes back to queued"
            : "set the dead letter aside for good; its task stays failed",
        )
        .requiredOption("--reason <text>", "why: recorded in the audit trail"),
    )
      .addHelpText(
        "after",
        `\nExample:\n  npx dv dlq ${action} 0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f --reason "${action === "replay" ? "the switch is back" : "the network was deleted"}"\n`,
      )
      .action(async (id: string, flags: ApiTarget & { reason: string }) => {
        const letter = await callApi<DeadLetter>(
          flags,
          "POST",
          `/dead-letters/${checkId(id)}/${action}`,
          { reason: flags.reason },
        );
        process.stdout.write(
          action === "replay"
            ? `dead letter ${letter.id} replayed as message ${letter.replayMessageId ?? "?"}${letter.taskId ? `; task ${letter.taskId} is queued again` : ""}\n`
            : `dead letter ${letter.id} discarded\n`,
        );
      });
  }
}
