// What the processes of a benchmark used: CPU seconds per group (PostgreSQL backends, nats-server,
// each `dv` process, the load generator) from /proc, and the peak resident memory of named
// processes, sampled while the benchmark runs. Linux only, like the benchmarks.
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** Named processes: label → pid. */
export type Named = Readonly<Record<string, number>>;

function stat(pid: string): { comm: string; ticks: number } | undefined {
  try {
    const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
    const close = raw.lastIndexOf(")");
    const comm = raw.slice(raw.indexOf("(") + 1, close);
    const fields = raw.slice(close + 2).split(" ");
    // Fields after the command: state(0) … utime(11) stime(12) cutime(13) cstime(14). The
    // children's times count what exited and was waited for, such as PostgreSQL backends whose
    // connection closed, in their parent (the postmaster).
    const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    return { comm, ticks };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** CPU used so far by every process of interest: pid → group and seconds. */
export type CpuReading = ReadonlyMap<number, { group: string; seconds: number }>;

/** CPU seconds used so far, per process, grouped `postgres`, `nats-server`, named, `bench`. */
export function cpuSeconds(named: Named = {}): CpuReading {
  const labels = new Map(Object.entries(named).map(([label, pid]) => [pid, label]));
  labels.set(process.pid, "bench (load generator)");
  const out = new Map<number, { group: string; seconds: number }>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = stat(entry);
    if (!s) continue;
    const pid = Number(entry);
    const group =
      labels.get(pid) ??
      (s.comm === "postgres" ? "postgres" : s.comm === "nats-server" ? "nats-server" : undefined);
    if (group) out.set(pid, { group, seconds: s.ticks / TICKS });
  }
  return out;
}

/**
 * CPU seconds used between two {@link cpuSeconds} readings, by group: per process, so one that
 * exits or starts in between does not count negatively (a process that started counts whole).
 */
export function cpuBetween(before: CpuReading, after: CpuReading): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [pid, { group, seconds }] of after) {
    const delta = Math.max(0, seconds - (before.get(pid)?.seconds ?? 0));
    out[group] = (out[group] ?? 0) + delta;
  }
  return out;
}

/** Resident memory of `pid` in MiB (NaN once it is gone). */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Samples the resident memory of named processes every `everyMs` until stopped; keeps peaks. */
export class RssSampler {
  readonly #named: Named;
  readonly #peak: Record<string, number> = {};
  readonly #last: Record<string, number> = {};
  readonly #timer: NodeJS.Timeout;

  constructor(named: Named, everyMs = 200) {
    this.#named = named;
    this.#sample();
    this.#timer = setInterval(() => this.#sample(), everyMs);
  }

  #sample(): void {
    for (const [label, pid] of Object.entries(this.#named)) {
      const rss = rssOf(pid);
      if (Number.isNaN(rss)) continue;
      this.#last[label] = rss;
      this.#peak[label] = Math.max(this.#peak[label] ?? 0, rss);
    }
  }

  /** Peak MiB per label so far. */
  peaks(): Record<string, number> {
    this.#sample();
    return { ...this.#peak };
  }

  /** The latest MiB per label. */
  latest(): Record<string, number> {
    this.#sample();
    return { ...this.#last };
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
