import type { Command } from "commander";
import { type ApiTarget, callApi, withApiOptions } from "../client.js";
import { CliError } from "../errors.js";
import { ExitCode } from "../exit-codes.js";
import { type OutputFormat, print, table, withOutputOption } from "../output.js";

interface Quotas {
  limits: { quota: string; scope: string; limit: number | null; source: string }[];
  usage: { quota: string; scope: string; used: number; limit: number | null }[];
}

const shown = (limit: number | null) => (limit === null ? "none" : String(limit));

/** Parses `scope=limit` arguments (`*=32768 dc1=4096`) into the body of a quota change. */
export function parseLimits(args: readonly string[]): Record<string, number> {
  const limits: Record<string, number> = {};
  for (const arg of args) {
    const match = /^([^=]+)=(\d{1,10})$/.exec(arg);
    if (!match?.[1] || match[2] === undefined) {
      throw new CliError(
        `"${arg}" is not SCOPE=LIMIT (a datacenter, machine class, environment id or * for every scope, then a whole number): dv quota set acme addresses '*=32768' dc1=4096`,
        ExitCode.Usage,
      );
    }
    limits[match[1]] = Number(match[2]);
  }
  return limits;
}

/** Adds `dv quota get|set`: a tenant's quotas, what it holds, and operators' overrides. */
export function registerQuota(program: Command): void {
  const quota = program
    .command("quota")
    .description("a tenant's quotas: the limits in force and what it holds");

  withOutputOption(
    withApiOptions(
      quota
        .command("get")
        .argument("<tenant>", "the tenant's name or id")
        .description("the tenant's limits (from the PlatformPolicy or set for it) and its usage"),
    ),
  )
    .addHelpText("after", "\nExamples:\n  npx dv quota get acme\n  npx dv quota get acme -o json\n")
    .action(async (tenant: string, flags: ApiTarget & { output: OutputFormat }) => {
      const q = await callApi<Quotas>(
        flags,
        "GET",
        `/tenants/${encodeURIComponent(tenant)}/quotas`,
      );
      print(
        flags.output,
        q,
        () =>
          `${table(
            ["quota", "scope", "limit", "source"],
            q.limits.map((l) => [l.quota, l.scope, shown(l.limit), l.source]),
          )}\n\n${table(
            ["quota", "scope", "used", "limit"],
            q.usage.map((u) => [u.quota, u.scope, String(u.used), shown(u.limit)]),
          )}`,
      );
    });

  withOutputOption(
    withApiOptions(
      quota
        .command("set")
        .argument("<tenant>", "the tenant's name or id")
        .argument("<quota>", "addresses, vlans, servers, clusters, buckets, environments, …")
        .argument(
          "[limits...]",
          "SCOPE=LIMIT: '*' for every scope, or a datacenter, machine class or environment id",
        )
        .option(
          "--default",
          "forget the tenant's limits of this quota: the PlatformPolicy's apply again",
        )
        .description(
          "replace a tenant's limits of one quota (operators); audited. A limit below what the tenant holds refuses new requests and takes nothing away",
        ),
    ),
  )
    .addHelpText(
      "after",
      "\nExamples:\n  npx dv quota set acme addresses '*=32768' dc1=4096\n  npx dv quota set acme servers m1-large=8\n  npx dv quota set acme addresses --default\n",
    )
    .action(
      async (
        tenant: string,
        name: string,
        args: string[],
        flags: ApiTarget & { output: OutputFormat; default?: boolean },
      ) => {
        if (!flags.default && args.length === 0) {
          throw new CliError(
            "name at least one SCOPE=LIMIT, or --default to go back to the PlatformPolicy's limit",
            ExitCode.Usage,
          );
        }
        if (flags.default && args.length > 0) {
          throw new CliError("--default takes no SCOPE=LIMIT", ExitCode.Usage);
        }
        const q = await callApi<Quotas>(
          flags,
          "PUT",
          `/tenants/${encodeURIComponent(tenant)}/quotas/${encodeURIComponent(name)}`,
          { limits: flags.default ? {} : parseLimits(args) },
        );
        print(flags.output, q, () =>
          table(
            ["quota", "scope", "limit", "source"],
            q.limits
              .filter((l) => l.quota === name)
              .map((l) => [l.quota, l.scope, shown(l.limit), l.source]),
          ),
        );
      },
    );
}
