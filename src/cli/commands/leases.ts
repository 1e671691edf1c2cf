import type { Command } from "commander";
import { type ApiTarget, callApi, withApiOptions } from "../client.js";
import { type OutputFormat, print, table, withOutputOption } from "../output.js";

interface Overview {
  leases: {
    shard: number;
    holder: string | null;
    fencingToken: number;
    live: boolean;
    expiresInMs: number | null;
  }[];
  members: { holder: string; datacenterId: string; live: boolean }[];
}

const seconds = (ms: number | null) => (ms === null ? "" : `${(ms / 1000).toFixed(1)}s`);

/** Adds `dv leases`: which controller replica reconciles which shard. */
export function registerLeases(program: Command): void {
  withOutputOption(
    withApiOptions(
      program
        .command("leases")
        .description(
          "which controller replica holds which shard, and the platform leader (operators)",
        )
        .option("--shards", "one line per shard instead of one per replica"),
    ),
  )
    .addHelpText("after", "\nExamples:\n  npx dv leases\n  npx dv leases --shards -o wide\n")
    .action(async (flags: ApiTarget & { output: OutputFormat; shards?: boolean }) => {
      const o = await callApi<Overview>(flags, "GET", "/leases");
      print(flags.output, o, () => {
        if (flags.shards)
          return table(
            ["shard", "holder", "token", "live", "expires in"],
            o.leases.map((l) => [
              l.shard === -1 ? "platform" : String(l.shard),
              l.holder ?? "",
              String(l.fencingToken),
              l.live ? "yes" : "no",
              l.live ? seconds(l.expiresInMs) : "",
            ]),
          );
        const live = o.leases.filter((l) => l.live);
        const shards = live.filter((l) => l.shard >= 0);
        const total = o.leases.filter((l) => l.shard >= 0).length;
        const leader = live.find((l) => l.shard === -1)?.holder;
        const free = total - shards.length;
        const rows = o.members
          .filter((m) => m.live)
          .map((m) => [
            m.holder,
            m.datacenterId,
            String(shards.filter((l) => l.holder === m.holder).length),
            m.holder === leader ? "yes" : "",
          ]);
        // The platform leader is a process of its own name when it is not also a shard holder.
        if (leader && !o.members.some((m) => m.holder === leader))
          rows.push([leader, "", "0", "yes"]);
        return `${table(["replica", "datacenter", "shards", "platform leader"], rows)}${total} shards, ${free} not held\n`;
      });
    });
}
