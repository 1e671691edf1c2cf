import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../program.js";
import { completions } from "./completion.js";

describe("shell completion", () => {
  const program = buildProgram();

  it("offers the top-level commands, but not the hidden one", () => {
    const words = completions(program, []);
    for (const c of ["get", "describe", "create", "delete", "tasks", "dlq", "config", "dev"])
      expect(words).toContain(c);
    expect(words).not.toContain("__complete");
  });

  it("offers subcommands, kinds, and the options of the command typed so far", () => {
    expect(completions(program, ["tasks"])).toEqual(
      expect.arrayContaining(["list", "get", "watch", "cancel"]),
    );
    expect(completions(program, ["get"])).toEqual(
      expect.arrayContaining(["networks", "tenants", "--output", "--tenant", "--watch"]),
    );
    // The platform kinds `dv get` shows (catalog.ts), and only it.
    expect(completions(program, ["get"])).toEqual(
      expect.arrayContaining(["datacenters", "machineclasses", "networkpools", "serverpools"]),
    );
    expect(completions(program, ["delete"])).not.toContain("datacenters");
    // After the kind, no more kinds: only options.
    const afterKind = completions(program, ["get", "networks"]);
    expect(afterKind).not.toContain("tenants");
    expect(afterKind).toContain("--selector");
    expect(completions(program, ["dlq", "replay"])).toContain("--reason");
  });

  it("prints bash and zsh scripts that parse", () => {
    for (const shell of ["bash", "zsh"] as const) {
      let script = "";
      const write = process.stdout.write.bind(process.stdout);
      process.stdout.write = (chunk: string) => {
        script += chunk;
        return true;
      };
      try {
        buildProgram().parse(["node", "dv", "completion", shell]);
      } finally {
        process.stdout.write = write;
      }
      expect(script).toContain("dv __complete");
      if (shell === "bash") execFileSync("bash", ["-n"], { input: script });
    }
  });
});
