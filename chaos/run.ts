// `npm run chaos [-- --quick] [-- FILTER…]`: runs the fault scenarios, security checks and
// model-based tests in chaos/ one file at a time on the real services hack/ starts, prints the
// summary table, and writes it: .cache/chaos/latest.md always; docs/reliability.md after a full
// run of every file in which every check held.
//   --quick   every scenario once, at reduced sizes (what `npm test`, and so CI, runs)
//   FILTER    only the chaos files whose path contains it (docs/reliability.md is then left alone)
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { format } from "prettier";
import { renderMarkdown, renderText, summarise } from "./support/render.js";
import { RESULTS, type RunResult } from "./support/report.js";

const ROOT = join(import.meta.dirname, "..");

const { values, positionals } = parseArgs({
  options: { quick: { type: "boolean", default: false } },
  allowPositionals: true,
});

const started = Date.now();
const vitest = spawnSync(
  join(ROOT, "node_modules/.bin/vitest"),
  ["run", "--config", "vitest.chaos.config.ts", ...positionals],
  {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, DV_CHAOS_QUICK: values.quick ? "1" : "0" },
  },
);

const results: RunResult[] = existsSync(RESULTS)
  ? readFileSync(RESULTS, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as RunResult)
  : [];
const summaries = summarise(results);
const durationMinutes = (Date.now() - started) / 60_000;
const markdown = await format(
  renderMarkdown({
    date: new Date(started).toISOString().slice(0, 16).replace("T", " ") + " UTC",
    machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.versions.node}`,
    durationMinutes,
    summaries,
  }),
  { parser: "markdown" },
);
mkdirSync(join(ROOT, ".cache/chaos"), { recursive: true });
writeFileSync(join(ROOT, ".cache/chaos/latest.md"), markdown);
const complete = vitest.status === 0 && !values.quick && positionals.length === 0;
if (complete) writeFileSync(join(ROOT, "docs/reliability.md"), markdown);

console.log(`\n${renderText(summaries)}`);
const bad = summaries.filter((s) => s.lost + s.duplicated + s.violations > 0);
console.log(
  `\nnpm run chaos${values.quick ? " --quick" : ""}: ${summaries.length} scenarios, ${results.length} runs in ${durationMinutes.toFixed(1)} min; ` +
    (bad.length
      ? `invariants broken in ${bad.map((s) => s.scenario).join(", ")}`
      : "no invariant broken") +
    `; the table is in ${complete ? "docs/reliability.md and " : ""}.cache/chaos/latest.md`,
);
process.exit(vitest.status === 0 && bad.length === 0 ? 0 : (vitest.status ?? 1) || 1);
