import { type Command, Option } from "commander";
import { newId } from "../../kernel/index.js";
import {
  MessageError,
  type SimReply,
  WORKER_SERVICES,
  type WorkerService,
} from "../../messaging/index.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { withNats, withNatsOption } from "../nats.js";
import { print, table, withOutputOption, type OutputFormat } from "../output.js";

const serviceOption = () =>
  new Option("--service <service>", "the domain service whose simulated driver to change")
    .choices([...WORKER_SERVICES])
    .makeOptionMandatory();

function target(flags: { resource?: string; all?: boolean }): string {
  if (flags.all && flags.resource)
    throw new CliError("give --resource <id> or --all, not both", ExitCode.Usage);
  if (flags.all) return "*";
  if (!flags.resource) throw new CliError("--resource <id> or --all is required", ExitCode.Usage);
  return flags.resource;
}

async function ask(
  nats: string | undefined,
  service: WorkerService,
  what: "fault" | "drift",
  data: Record<string, unknown>,
): Promise<Extract<SimReply, { ok: true }>> {
  let reply: SimReply;
  const { askSimulator } = await import("../../workers/index.js");
  try {
    reply = await withNats(nats, "sim", (nc) =>
      askSimulator(nc, service, what, data as never, { actor: "operator:dv-cli", newId }),
    );
  } catch (err) {
    if (err instanceof MessageError) {
      const fields = err.issues.map((i) => `${i.path || "(request)"}: ${i.message}`).join("; ");
      throw new CliError(`invalid request: ${fields}`, ExitCode.Usage);
    }
    if (err instanceof Error && err.message.startsWith("no "))
      throw new CliError(err.message, ExitCode.Unavailable);
    throw err;
  }
  if (!reply.ok) throw new CliError(`${service}: ${reply.error}`, ExitCode.Failed);
  return reply;
}

/**
 * Adds `dv sim fault set|clear|list` and `dv sim drift`: controls of the workers' simulated
 * drivers over NATS request/reply (dv.rpc.<service>.sim_*), for demos and tests.
 */
export function registerSim(program: Command): void {
  const sim = program
    .command("sim")
    .description("control the simulated domain drivers (demos and tests; never in production)");
  const fault = sim.command("fault").description("make a driver fail, and stop it failing");

  withNatsOption(
    fault
      .command("set")
      .description("make every operation on a resource (or on all of the service's) fail")
      .addOption(serviceOption())
      .option("--resource <id>", "the resource (network, server, cluster or bucket id)")
      .option("--all", "every resource of the service")
      .option("--step <step>", "only this step (bootstrap, network, server:<name>, …)")
      .option("--transient <times>", "fail this many times, then succeed (default: until cleared)")
      .option("--message <text>", "the error the driver reports", "fault injected by an operator"),
  )
    .addHelpText(
      "after",
      '\nExamples:\n  npx dv sim fault set --service nett --all --message "switch offline"\n  npx dv sim fault set --service plattform --resource <cluster-id> --step bootstrap --transient 2\n',
    )
    .action(
      async (flags: {
        service: WorkerService;
        resource?: string;
        all?: boolean;
        step?: string;
        transient?: string;
        message: string;
        nats?: string;
      }) => {
        const times = flags.transient === undefined ? undefined : Number(flags.transient);
        if (times !== undefined && !(Number.isInteger(times) && times >= 1 && times <= 1000))
          throw new CliError(
            `--transient "${flags.transient}" must be a whole number from 1 to 1000`,
            ExitCode.Usage,
          );
        const resource = target(flags);
        await ask(flags.nats, flags.service, "fault", {
          action: "set",
          resource,
          ...(flags.step ? { step: flags.step } : {}),
          mode: times === undefined ? "permanent" : "transient",
          ...(times === undefined ? {} : { remaining: times }),
          message: flags.message,
        });
        process.stdout.write(
          `${flags.service}: ${resource === "*" ? "every resource" : resource}${flags.step ? ` (step ${flags.step})` : ""} now fails ${times === undefined ? "until cleared" : `${times} time(s)`}\n`,
        );
      },
    );

  withNatsOption(
    fault
      .command("clear")
      .description("stop a resource's (or the service-wide) fault")
      .addOption(serviceOption())
      .option("--resource <id>", "the resource")
      .option("--all", "the service-wide fault"),
  )
    .addHelpText("after", "\nExample:\n  npx dv sim fault clear --service nett --all\n")
    .action(
      async (flags: {
        service: WorkerService;
        resource?: string;
        all?: boolean;
        nats?: string;
      }) => {
        const resource = target(flags);
        const reply = await ask(flags.nats, flags.service, "fault", { action: "clear", resource });
        process.stdout.write(`${flags.service}: ${reply.changed} fault(s) cleared\n`);
      },
    );

  withOutputOption(
    withNatsOption(
      fault
        .command("list")
        .description("list the faults of one service's driver")
        .addOption(serviceOption()),
    ),
  )
    .addHelpText("after", "\nExample:\n  npx dv sim fault list --service nett\n")
    .action(async (flags: { service: WorkerService; nats?: string; output: OutputFormat }) => {
      const reply = await ask(flags.nats, flags.service, "fault", { action: "list" });
      const faults = reply.faults ?? [];
      print(flags.output, faults, () =>
        faults.length === 0
          ? `${flags.service}: no faults.\n`
          : table(
              ["resource", "step", "mode", "remaining", "message"],
              faults.map((f) => [
                f.resource,
                f.step || "*",
                f.mode,
                f.remaining === null ? "-" : String(f.remaining),
                f.message,
              ]),
            ),
      );
    });

  withNatsOption(
    sim
      .command("drift")
      .description("change what a device holds behind the platform's back (drift correction demo)")
      .addOption(serviceOption())
      .requiredOption("--resource <id>", "the resource")
      .option("--step <step>", "the device's step", "main")
      .requiredOption(
        "--set <key=value...>",
        "device fields to overwrite (values are JSON when they parse, text otherwise)",
      ),
  )
    .addHelpText(
      "after",
      "\nExample:\n  npx dv sim drift --service nett --resource <network-id> --set vlan_id=999\n",
    )
    .action(
      async (flags: {
        service: WorkerService;
        resource: string;
        step: string;
        set: string[];
        nats?: string;
      }) => {
        const state: Record<string, unknown> = {};
        for (const pair of flags.set) {
          const at = pair.indexOf("=");
          if (at <= 0)
            throw new CliError(`--set "${pair}" must look like key=value`, ExitCode.Usage);
          const raw = pair.slice(at + 1);
          let value: unknown = raw;
          try {
            value = JSON.parse(raw);
          } catch {
            // plain text
          }
          state[pair.slice(0, at)] = value;
        }
        await ask(flags.nats, flags.service, "drift", {
          resource: flags.resource,
          step: flags.step,
          state,
        });
        process.stdout.write(
          `${flags.service}: device ${flags.resource}/${flags.step} changed; the platform corrects it on its next observation\n`,
        );
      },
    );
}
