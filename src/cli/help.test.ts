import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "./program.js";

/** Every command a user can type, with its words. */
function leaves(command: Command, path: string[] = []): { path: string; command: Command }[] {
  return command.commands
    .filter((c) => !(c as unknown as { _hidden?: boolean })._hidden)
    .flatMap((c) => {
      const words = [...path, c.name()];
      return c.commands.length === 0 ? [{ path: words.join(" "), command: c }] : leaves(c, words);
    });
}

describe("dv --help", () => {
  it("shows an example on every command", () => {
    const missing: string[] = [];
    for (const { path, command } of leaves(buildProgram())) {
      let help = "";
      command.configureOutput({ writeOut: (text) => (help += text) });
      command.outputHelp();
      if (!/\nExamples?:\n {2}\S/.test(help)) missing.push(path);
      expect(command.description().length, path).toBeGreaterThan(10);
    }
    expect(missing).toEqual([]);
  });
});
