import type { Command } from "commander";
import { type ApiTarget, callApi, resolveTarget, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { age, type OutputFormat, print, table, withOutputOption } from "../output.js";

export interface TaskEvent {
  seq: number;
  verb: string;
  at: string;
  actor: string;
  message: string;
  percent: number | null;
}

export interface Task {
  id: string;
  operation: string;
  state: "created" | "queued" | "started" | "succeeded" | "failed" | "cancelled";
  progress: { percent: number; message: string };
  reason: string | null;
  resource: { kind: string; id: string; generation: number; href: string };
  actor: string;
  correlationId: string;
  createdAt: string;
  finishedAt: string | null;
  history?: TaskEvent[];
}

const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

type Flags = ApiTarget & { tenant?: string };

async function tenantOf(flags: Flags): Promise<string> {
  const tenant = flags.tenant ?? (await resolveTarget(flags)).context?.tenant;
  if (!tenant)
    throw new CliError(
      "tasks belong to a tenant: pass --tenant or set one in the context (dv config set-context <name> --tenant <name>)",
      ExitCode.Usage,
    );
  return encodeURIComponent(tenant);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
function checkId(id: string): string {
  if (!UUID.test(id))
    throw new CliError(
      `"${id}" is not a task id (a UUID, as dv tasks list shows it)`,
      ExitCode.Usage,
    );
  return id;
}

function bar(percent: number, width = 24): string {
  const filled = Math.round((Math.max(0, Math.min(100, percent)) / 100) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${String(percent).padStart(3)}%`;
}

const time = (iso: string) => iso.slice(11, 19);

/**
 * Follows a task until it ends: its step log as it grows and, on a terminal, a progress bar
 * redrawn in place. Returns when it succeeded; throws a CliError (exit 1 failed, 6 cancelled)
 * otherwise, so scripts can use the exit code.
 */
export async function watchTask(flags: Flags, tenant: string, id: string): Promise<Task> {
  const path = `/tenants/${tenant ? encodeURIComponent(tenant) : await tenantOf(flags)}/tasks/${checkId(id)}`;
  const tty = process.stderr.isTTY;
  let printed = 0;
  let barShown = false;
  for (;;) {
    const task = await callApi<Task>(flags, "GET", path);
    const history = task.history ?? [];
    if (barShown) process.stderr.write("\r\x1b[2K");
    for (const e of history.slice(printed))
      process.stdout.write(
        `${time(e.at)}  ${e.verb.padEnd(9)}  ${e.actor.padEnd(14)}  ${e.percent !== null ? `${String(e.percent).padStart(3)}%  ` : ""}${e.message}\n`,
      );
    printed = history.length;
    if (TERMINAL.has(task.state)) {
      barShown = false;
      if (task.state === "succeeded") {
        process.stdout.write(`task ${task.id} succeeded (${task.operation})\n`);
        return task;
      }
      throw new CliError(
        `task ${task.id} ${task.state}: ${task.reason ?? "no reason given"}`,
        task.state === "failed" ? ExitCode.Failed : ExitCode.Cancelled,
      );
    }
    if (tty) {
      process.stderr.write(`${bar(task.progress.percent)} ${task.state}: ${task.progress.message}`);
      barShown = true;
    }
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Adds `dv tasks list|get|watch|cancel`. */
export function registerTasks(program: Command): void {
  const tasks = program
    .command("tasks")
    .description("tasks: what the platform is doing for a create, update or delete, until it ends");
  const scoped = (c: Command) =>
    withApiOptions(c).option("--tenant <name>", "the tenant (default: the current context's)");

  withOutputOption(scoped(tasks.command("list").description("the tenant's tasks, newest first")))
    .option("--state <state>", "only tasks in this state")
    .addHelpText("after", "\nExample:\n  npx dv tasks list --tenant acme\n")
    .action(async (flags: Flags & { output: OutputFormat; state?: string }) => {
      const query = new URLSearchParams({ limit: "100" });
      if (flags.state) query.set("state", flags.state);
      const page = await callApi<{ items: Task[] }>(
        flags,
        "GET",
        `/tenants/${await tenantOf(flags)}/tasks?${query.toString()}`,
      );
      print(flags.output, { items: page.items }, () =>
        page.items.length === 0
          ? "No tasks.\n"
          : table(
              ["id", "operation", "state", "progress", "age", "reason"],
              page.items.map((t) => [
                t.id,
                t.operation,
                t.state,
                `${t.progress.percent}%`,
                age(t.createdAt),
                t.reason ?? "",
              ]),
            ),
      );
    });

  withOutputOption(
    scoped(
      tasks
        .command("get")
        .description("one task, with its history")
        .argument("<id>", "the task id"),
    ),
  )
    .addHelpText(
      "after",
      "\nExample:\n  npx dv tasks get 0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f -o yaml\n",
    )
    .action(async (id: string, flags: Flags & { output: OutputFormat }) => {
      const task = await callApi<Task>(
        flags,
        "GET",
        `/tenants/${await tenantOf(flags)}/tasks/${checkId(id)}`,
      );
      print(flags.output, task, () =>
        [
          `ID:         ${task.id}`,
          `Operation:  ${task.operation}`,
          `State:      ${task.state}${task.reason ? ` (${task.reason})` : ""}`,
          `Progress:   ${bar(task.progress.percent)} ${task.progress.message}`,
          `Resource:   ${task.resource.kind} ${task.resource.id} (generation ${task.resource.generation})`,
          `Actor:      ${task.actor}`,
          `Created:    ${task.createdAt}`,
          "History:",
          ...(task.history ?? []).map(
            (e) => `  ${time(e.at)}  ${e.verb.padEnd(9)}  ${e.actor.padEnd(14)}  ${e.message}`,
          ),
          "",
        ].join("\n"),
      );
    });

  scoped(
    tasks
      .command("watch")
      .description(
        "follow a task to its end: step log and progress bar; exit 0 succeeded, 1 failed, 6 cancelled",
      )
      .argument("<id>", "the task id"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  npx dv tasks watch 0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f && echo done\n",
    )
    .action(async (id: string, flags: Flags) => {
      await watchTask(flags, "", id);
    });

  scoped(
    tasks
      .command("cancel")
      .description("cancel a task that has not ended")
      .argument("<id>", "the task id"),
  )
    .addHelpText(
      "after",
      "\nExample:\n  npx dv tasks cancel 0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f\n",
    )
    .action(async (id: string, flags: Flags) => {
      const task = await callApi<Task>(
        flags,
        "POST",
        `/tenants/${await tenantOf(flags)}/tasks/${checkId(id)}/cancel`,
        {},
      );
      process.stdout.write(`task ${task.id}: ${task.state}\n`);
    });
}
