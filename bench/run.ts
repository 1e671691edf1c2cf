// `npm run bench [-- --quick] [-- --profile] [-- FILTER…]`: builds dist/ (the `dv` processes of
// the benchmarks run the build, as the image does), runs the benchmarks in bench/ one file at a
// time on the real services hack/ starts, prints the table, and writes the report:
// .cache/bench/latest.{md,json} always; docs/benchmarks.{md,json} after a full run of every file.
//   --quick     reduced sizes, every scenario, under two minutes once the services are built
//   --profile   a CPU profile of every `dv` process, summarised in the report
//   FILTER      only the bench files whose path contains it (the docs are then left alone)
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { format } from "prettier";
import { HOTSPOTS, type Hotspots, type Measurement, RESULTS } from "./support/report.js";
import { derived, type Machine, renderJson, renderMarkdown, type Run } from "./support/render.js";

const ROOT = join(import.meta.dirname, "..");

const { values, positionals } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
  },
  allowPositionals: true,
});

function sh(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

function lines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}

// `npm run build`, incrementally: a second run rebuilds only what changed.
const build = spawnSync(
  join(ROOT, "node_modules/.bin/tsc"),
  [
    "-p",
    "tsconfig.build.json",
    "--incremental",
    "--tsBuildInfoFile",
    ".cache/bench/dist.tsbuildinfo",
  ],
  { cwd: ROOT, stdio: "inherit" },
);
if (build.status !== 0) {
  console.error("npm run bench: building dist/ failed (npm run build)");
  process.exit(build.status ?? 1);
}
if (values.profile) rmSync(join(ROOT, ".cache/bench/profiles"), { recursive: true, force: true });
const started = Date.now();
const vitest = spawnSync(
  join(ROOT, "node_modules/.bin/vitest"),
  ["run", "--config", "vitest.bench.config.ts", ...positionals],
  {
    cwd: ROOT,
    stdio: "inherit",
    env: {
      ...process.env,
      DV_BENCH_QUICK: values.quick ? "1" : "0",
      DV_BENCH_PROFILE: values.profile ? "1" : "0",
    },
  },
);

const measurements = lines<Measurement>(RESULTS);
const natsBin = sh("bash", ["hack/nats.sh", "bin"]);
const machine: Machine = {
  cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "CPU"}`,
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  os: `${sh("sh", ["-c", ". /etc/os-release && echo $PRETTY_NAME"])} (Linux ${release()})`,
  node: process.versions.node,
  postgres: sh("psql", [
    "--no-psqlrc",
    "-At",
    "-c",
    "SHOW server_version",
    sh("bash", ["hack/postgres.sh", "url"]),
  ])
    .replace(/^/, "PostgreSQL ")
    .replace(/ \(.*$/, ""),
  natsServer:
    natsBin === "unknown" ? "unknown" : sh(natsBin, ["--version"]).replace(/^nats-server: /, ""),
  graphileWorker: (
    JSON.parse(readFileSync(join(ROOT, "node_modules/graphile-worker/package.json"), "utf8")) as {
      version: string;
    }
  ).version,
};
const run: Run = {
  date: new Date(started).toISOString().slice(0, 16).replace("T", " ") + " UTC",
  quick: values.quick,
  machine,
  measurements: [...measurements, ...derived(measurements)],
  hotspots: lines<Hotspots>(HOTSPOTS),
};
const markdown = await format(renderMarkdown(run), { parser: "markdown" });
const json = await format(renderJson(run), { parser: "json" });
mkdirSync(join(ROOT, ".cache/bench"), { recursive: true });
writeFileSync(join(ROOT, ".cache/bench/latest.md"), markdown);
writeFileSync(join(ROOT, ".cache/bench/latest.json"), json);
const complete = vitest.status === 0 && !values.quick && positionals.length === 0;
if (complete) {
  writeFileSync(join(ROOT, "docs/benchmarks.md"), markdown);
  writeFileSync(join(ROOT, "docs/benchmarks.json"), json);
}
// The table, at the end of everything the benchmarks printed.
const width = Math.max(...run.measurements.map((m) => m.metric.length), 10);
console.log("");
for (const m of run.measurements) {
  const verdict = m.goal
    ? m.goal.met
      ? "  goal met"
      : `  goal missed by ${m.goal.missedByPercent} %`
    : "";
  console.log(
    `${m.scenario.padEnd(10)} ${m.metric.padEnd(width)} ${String(m.value).padStart(10)} ${m.unit}${verdict}`,
  );
}
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
console.log(
  `\nnpm run bench: ${measurements.length} measurements in ${minutes} min; the report is in ${complete ? "docs/benchmarks.md and " : ""}.cache/bench/latest.md`,
);
process.exit(vitest.status ?? 1);
