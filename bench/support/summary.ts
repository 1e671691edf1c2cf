// Global setup of `npm run bench`: starts a fresh results file, and at the end prints every
// measurement as one table and writes it to .cache/bench/latest.md.
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { type Measurement, RESULTS } from "./report.js";

export default function setup(): () => void {
  rmSync(RESULTS, { force: true });
  return () => {
    if (!existsSync(RESULTS)) return;
    const rows = readFileSync(RESULTS, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Measurement);
    const machine = `${cpus().length} × ${cpus()[0]?.model.trim() ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.versions.node}`;
    const table = [
      `Dataverket benchmarks, ${new Date().toISOString()} (${machine})`,
      "",
      "| scenario | metric | value | unit |",
      "| --- | --- | ---: | --- |",
      ...rows.map((r) => `| ${r.scenario} | ${r.metric} | ${r.value} | ${r.unit} |`),
      "",
    ].join("\n");
    writeFileSync(join(dirname(RESULTS), "latest.md"), table);
    process.stdout.write(`\n${table}\n`);
  };
}
