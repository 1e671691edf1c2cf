import { readFile } from "node:fs/promises";
import { type Command, Option } from "commander";
import { load } from "js-yaml";
import { type ApiTarget, callApi, resolveTarget, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { age, formatted, type OutputFormat, print, table } from "../output.js";
import { CATALOG_KINDS, getCatalog } from "./catalog.js";
import { type Task, watchTask } from "./tasks.js";

/** The kinds `dv get|describe|create|delete` know, with their names and where they live. */
export interface KindInfo {
  readonly singular: string;
  readonly plural: string;
  readonly aliases: readonly string[];
  /** What encloses it: a tenant, a project, an environment. */
  readonly scope: "root" | "tenant" | "project" | "environment";
  /** Infrastructure kinds answer writes with a task. */
  readonly infra: boolean;
}

const KINDS: readonly KindInfo[] = [
  { singular: "tenant", plural: "tenants", aliases: [], scope: "root", infra: false },
  { singular: "project", plural: "projects", aliases: [], scope: "tenant", infra: false },
  {
    singular: "environment",
    plural: "environments",
    aliases: ["env", "envs"],
    scope: "project",
    infra: false,
  },
  { singular: "network", plural: "networks", aliases: ["net"], scope: "environment", infra: true },
  { singular: "server", plural: "servers", aliases: ["srv"], scope: "environment", infra: true },
  { singular: "cluster", plural: "clusters", aliases: [], scope: "environment", infra: true },
  { singular: "bucket", plural: "buckets", aliases: [], scope: "environment", infra: true },
];

const KIND_NAMES = KINDS.map((k) => k.singular).join(", ");

/**
 * The kind a word names (`network`, `networks`, `net`). @throws {CliError} for another word,
 * listing the kinds, and `also` (the kinds a command takes besides, e.g. `dv get`'s platform kinds).
 */
export function kindInfo(word: string, also: readonly string[] = []): KindInfo {
  const kind = KINDS.find(
    (k) => k.singular === word || k.plural === word || k.aliases.includes(word),
  );
  if (!kind)
    throw new CliError(
      `unknown kind "${word}"; one of: ${[KIND_NAMES, ...also].join(", ")}`,
      ExitCode.Usage,
    );
  return kind;
}

type Wide = OutputFormat | "wide";

export type ScopeFlags = ApiTarget & { tenant?: string; project?: string; environment?: string };

/** `--tenant`, `--project`, `--environment`: default from the current context. */
export function withScopeOptions(command: Command): Command {
  return command
    .option("--tenant <name>", "the tenant (default: the current context's)")
    .option("--project <name>", "the project (default: the current context's)")
    .option("--environment <name>", "the environment (default: the current context's)");
}

/** The collection path of `kind`, with the scope from flags, then the current context. */
export async function collectionPath(kind: KindInfo, flags: ScopeFlags): Promise<string> {
  const { context } = await resolveTarget(flags);
  const need = (field: "tenant" | "project" | "environment"): string => {
    const value = flags[field] ?? context?.[field];
    if (!value)
      throw new CliError(
        `a ${kind.singular} lives in a ${field}: pass --${field} or set one in the context (dv config set-context <name> --${field} <name>)`,
        ExitCode.Usage,
      );
    return encodeURIComponent(value);
  };
  switch (kind.scope) {
    case "root":
      return "/tenants";
    case "tenant":
      return `/tenants/${need("tenant")}/projects`;
    case "project":
      return `/tenants/${need("tenant")}/projects/${need("project")}/environments`;
    case "environment":
      return `/tenants/${need("tenant")}/projects/${need("project")}/environments/${need("environment")}/${kind.plural}`;
  }
}

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  lastTransitionTime?: string;
}

export interface ApiObject {
  kind: string;
  metadata: {
    id: string;
    name: string;
    version: number;
    generation?: number;
    labels?: Record<string, string>;
    datacenter?: string;
    createdAt: string;
    deletionRequestedAt?: string | null;
  };
  spec?: Record<string, unknown>;
  status?: { observedGeneration?: number; conditions?: Condition[]; [field: string]: unknown };
}

const ready = (o: ApiObject): string =>
  o.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "";
const statusText = (o: ApiObject): string => {
  const c = o.status?.conditions;
  return (
    c?.find((x) => x.type === "Stalled" && x.status === "True")?.reason ??
    c?.find((x) => x.type === "Reconciling" && x.status === "True")?.reason ??
    (ready(o) === "True" ? "Ready" : "")
  );
};

/** kubectl-like columns; `wide` adds the spec and the message; AGE as of `now`. */
function rows(
  kind: KindInfo,
  items: readonly ApiObject[],
  wide: boolean,
  now = Date.now(),
): string {
  if (!kind.infra) {
    const env = kind.singular === "environment";
    const headers = [
      "name",
      ...(env ? ["datacenter"] : []),
      "id",
      "age",
      ...(wide ? ["labels"] : []),
    ];
    return table(
      headers,
      items.map((o) => [
        o.metadata.name,
        ...(env ? [typeof o.spec?.datacenter === "string" ? o.spec.datacenter : ""] : []),
        o.metadata.id,
        age(o.metadata.createdAt, now),
        ...(wide
          ? [
              Object.entries(o.metadata.labels ?? {})
                .map(([k, v]) => `${k}=${v}`)
                .join(","),
            ]
          : []),
      ]),
    );
  }
  const headers = [
    "name",
    "ready",
    "status",
    "generation",
    "age",
    ...(wide ? ["spec", "message"] : []),
  ];
  return table(
    headers,
    items.map((o) => [
      o.metadata.name,
      ready(o),
      statusText(o),
      `${o.status?.observedGeneration ?? 0}/${o.metadata.generation ?? 0}`,
      age(o.metadata.createdAt, now),
      ...(wide
        ? [
            JSON.stringify(o.spec ?? {}),
            o.status?.conditions?.find((c) => c.type === "Ready")?.message ?? "",
          ]
        : []),
    ]),
  );
}

function describe(o: ApiObject): string {
  const lines = [
    `Name:         ${o.metadata.name}`,
    `Kind:         ${o.kind}`,
    `ID:           ${o.metadata.id}`,
    ...(o.metadata.datacenter ? [`Datacenter:   ${o.metadata.datacenter}`] : []),
    `Labels:       ${
      Object.entries(o.metadata.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "<none>"
    }`,
    `Version:      ${o.metadata.version}`,
    ...(o.metadata.generation !== undefined
      ? [`Generation:   ${o.metadata.generation} (observed ${o.status?.observedGeneration ?? 0})`]
      : []),
    `Created:      ${o.metadata.createdAt} (${age(o.metadata.createdAt)} ago)`,
    ...(o.metadata.deletionRequestedAt
      ? [`Deleting:     since ${o.metadata.deletionRequestedAt}`]
      : []),
    "Spec:",
    ...Object.entries(o.spec ?? {}).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
  ];
  const { conditions, observedGeneration: _g, steps: _s, ...observed } = o.status ?? {};
  if (Object.keys(observed).length > 0) {
    lines.push("Status:");
    for (const [k, v] of Object.entries(observed)) lines.push(`  ${k}: ${JSON.stringify(v)}`);
  }
  if (conditions?.length) {
    lines.push("Conditions:");
    lines.push(
      ...table(
        ["type", "status", "reason", "since", "message"],
        conditions.map((c) => [
          c.type,
          c.status,
          c.reason,
          c.lastTransitionTime ? age(c.lastTransitionTime) : "",
          c.message,
        ]),
      )
        .trimEnd()
        .split("\n")
        .map((l) => `  ${l}`),
    );
  }
  return `${lines.join("\n")}\n`;
}

/** `key=value` pairs into an object; numbers, booleans and JSON values are parsed. */
function parseSets(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0)
      throw new CliError(
        `--set "${pair}": expected key=value, like prefixLength=24`,
        ExitCode.Usage,
      );
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    out[key] = value;
  }
  return out;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** Adds `dv get|describe|create|delete <kind> [name]`. */
export function registerResources(program: Command): void {
  const kindsHelp = `\nKinds: ${KINDS.map((k) => [k.singular, ...k.aliases].join("|")).join(", ")} (plurals work too).\n`;

  withScopeOptions(
    withApiOptions(
      program
        .command("get")
        .description("list resources of a kind, or show one")
        .argument("<kind>", "what to list")
        .argument("[name]", "one resource by name")
        .addOption(
          new Option("-o, --output <format>", "how to print the result")
            .choices(["table", "wide", "json", "yaml"])
            .default("table"),
        )
        .option("-l, --selector <selector>", "label selector, like team=payments")
        .option(
          "-w, --watch",
          "keep watching (every 2 s) and print the list again when it changes, until Ctrl-C",
        ),
    ),
  )
    .addHelpText(
      "after",
      `${kindsHelp}\nExamples:\n  npx dv get tenants\n  npx dv get networks --tenant acme --project shop --environment prod -o wide\n  npx dv get network web -o yaml\n`,
    )
    .action(
      async (
        word: string,
        name: string | undefined,
        flags: ScopeFlags & { output: Wide; selector?: string; watch?: boolean },
      ) => {
        if (await getCatalog(word, name, flags)) return; // a platform kind: catalog.ts
        const kind = kindInfo(
          word,
          CATALOG_KINDS.map((k) => k.singular),
        );
        const base = await collectionPath(kind, flags);
        const wide = flags.output === "wide";
        // How it prints, and what a watch compares: the output without its AGE column (which
        // moves every second), so it prints again only when something shown changed.
        const show = async (): Promise<{ seen: string; text: string }> => {
          if (name) {
            const o = await callApi<ApiObject>(flags, "GET", `${base}/${encodeURIComponent(name)}`);
            return {
              seen: render(flags.output, o, () => rows(kind, [o], wide, 0)),
              text: render(flags.output, o, () => rows(kind, [o], wide)),
            };
          }
          const query = new URLSearchParams({ limit: "500" });
          if (flags.selector) query.set("labelSelector", flags.selector);
          const page = await callApi<{ items: ApiObject[] }>(
            flags,
            "GET",
            `${base}?${query.toString()}`,
          );
          const list = (now?: number) =>
            render(flags.output, { items: page.items }, () =>
              page.items.length === 0
                ? `No ${kind.plural} found.\n`
                : rows(kind, page.items, wide, now),
            );
          return { seen: list(0), text: list() };
        };
        let last: string | undefined;
        for (;;) {
          const { seen, text } = await show();
          if (seen !== last) process.stdout.write(last !== undefined ? `\n${text}` : text);
          last = seen;
          if (!flags.watch) return;
          await new Promise((r) => setTimeout(r, 2_000));
        }
      },
    );

  withScopeOptions(
    withApiOptions(
      program
        .command("describe")
        .description("show one resource in detail: spec, what was observed, conditions")
        .argument("<kind>", "its kind")
        .argument("<name>", "its name"),
    ),
  )
    .addHelpText("after", `${kindsHelp}\nExample:\n  npx dv describe network web\n`)
    .action(async (word: string, name: string, flags: ScopeFlags) => {
      const kind = kindInfo(word);
      const base = await collectionPath(kind, flags);
      const o = await callApi<ApiObject>(flags, "GET", `${base}/${encodeURIComponent(name)}`);
      process.stdout.write(describe(o));
    });

  withScopeOptions(
    withApiOptions(
      program
        .command("create")
        .description("create a resource; infrastructure answers with a task (--wait follows it)")
        .argument("<kind>", "what to create")
        .argument("<name>", "its name (a DNS label)")
        .option(
          "--set <key=value>",
          "a spec field (repeat it), like --set prefixLength=24",
          collect,
        )
        .option("--label <key=value>", "a label (repeat it)", collect)
        .option("--datacenter <name>", "an environment's datacenter")
        .option("--display-name <text>", "a tenant's or project's display name")
        .option("-f, --filename <file>", "the spec (or the whole body) as YAML or JSON")
        .option("--wait", "follow the task until it ends; exit with its outcome")
        .addOption(
          new Option("-o, --output <format>", "how to print the result")
            .choices(["table", "json", "yaml"])
            .default("table"),
        ),
    ),
  )
    .addHelpText(
      "after",
      `${kindsHelp}\nExamples:\n  npx dv create tenant acme\n  npx dv create project shop --tenant acme\n  npx dv create environment prod --datacenter dc1 --tenant acme --project shop\n  npx dv create network web --set prefixLength=26 --wait\n`,
    )
    .action(
      async (
        word: string,
        name: string,
        flags: ScopeFlags & {
          set?: string[];
          label?: string[];
          datacenter?: string;
          displayName?: string;
          filename?: string;
          wait?: boolean;
          output: OutputFormat;
        },
      ) => {
        const kind = kindInfo(word);
        const base = await collectionPath(kind, flags);
        let fromFile: Record<string, unknown> = {};
        if (flags.filename) {
          try {
            fromFile = (load(await readFile(flags.filename, "utf8")) ?? {}) as Record<
              string,
              unknown
            >;
          } catch (err) {
            throw new CliError(
              `--filename ${flags.filename}: ${(err as Error).message}`,
              ExitCode.Usage,
            );
          }
        }
        const labels = flags.label ? (parseSets(flags.label) as Record<string, string>) : undefined;
        const body: Record<string, unknown> = kind.infra
          ? {
              name,
              spec: {
                ...(fromFile.spec ?? fromFile),
                ...parseSets(flags.set ?? []),
              },
            }
          : {
              ...fromFile,
              name,
              ...(flags.datacenter ? { datacenter: flags.datacenter } : {}),
              ...(flags.displayName ? { displayName: flags.displayName } : {}),
            };
        if (labels)
          body.labels = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
        const created = await callApi<ApiObject | Task>(flags, "POST", base, body);
        if (!kind.infra) {
          const o = created as ApiObject;
          print(
            flags.output,
            o,
            () => `${kind.singular} ${o.metadata.name} created (${o.metadata.id})\n`,
          );
          return;
        }
        const task = created as Task;
        if (!flags.wait) {
          print(
            flags.output,
            task,
            () =>
              `${kind.singular} ${name} accepted: task ${task.id} (${task.state}); follow it with: npx dv tasks watch ${task.id}\n`,
          );
          return;
        }
        process.stderr.write(`${kind.singular} ${name} accepted: task ${task.id}\n`);
        const { tenant } = flags.tenant
          ? flags
          : { tenant: (await resolveTarget(flags)).context?.tenant };
        await watchTask(flags, tenant ?? "", task.id);
      },
    );

  withScopeOptions(
    withApiOptions(
      program
        .command("delete")
        .description(
          "delete a resource (infrastructure: torn down, then released; answers with a task)",
        )
        .argument("<kind>", "its kind")
        .argument("<name>", "its name")
        .option("--wait", "follow the task until it ends; exit with its outcome"),
    ),
  )
    .addHelpText("after", `${kindsHelp}\nExample:\n  npx dv delete network web --wait\n`)
    .action(async (word: string, name: string, flags: ScopeFlags & { wait?: boolean }) => {
      const kind = kindInfo(word);
      const base = await collectionPath(kind, flags);
      const path = `${base}/${encodeURIComponent(name)}`;
      // The version read is the one deleted: a change in between is a conflict, not lost.
      const current = await callApi<ApiObject>(flags, "GET", path);
      const answer = await callApi<Task | undefined>(flags, "DELETE", path, undefined, {
        "if-match": `"${current.metadata.version}"`,
      });
      if (!kind.infra || !answer) {
        process.stdout.write(`${kind.singular} ${name} deleted\n`);
        return;
      }
      if (!flags.wait) {
        process.stdout.write(
          `${kind.singular} ${name} is being deleted: task ${answer.id}; follow it with: npx dv tasks watch ${answer.id}\n`,
        );
        return;
      }
      const { tenant } = flags.tenant
        ? flags
        : { tenant: (await resolveTarget(flags)).context?.tenant };
      await watchTask(flags, tenant ?? "", answer.id);
    });
}

function render(format: Wide, value: unknown, asTable: () => string): string {
  return formatted(format, value, asTable);
}
