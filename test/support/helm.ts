// The pinned helm of hack/helm.sh, for the tests that render charts/dataverket.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { loadAll } from "js-yaml";

const run = promisify(execFile);

/** Installs the pinned helm when it is missing (a no-op otherwise; the first time it downloads). */
export async function installHelm(): Promise<void> {
  await run("bash", ["hack/helm.sh", "install"], { timeout: 300_000 });
}

/** Runs the pinned helm with `args` and returns what it printed. */
export async function helm(args: readonly string[]): Promise<string> {
  const { stdout } = await run("bash", ["hack/helm.sh", "helm", ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** A Kubernetes object as rendered, with only what the tests read typed. */
export interface RenderedObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata?: { readonly name?: string; readonly namespace?: string };
  readonly [field: string]: unknown;
}

/** `helm template` of charts/dataverket, as YAML text and parsed objects. */
export async function renderChart(options: {
  readonly release: string;
  readonly namespace: string;
  /** `--set` values, name → value. */
  readonly set?: Readonly<Record<string, string>>;
}): Promise<{ yaml: string; objects: RenderedObject[] }> {
  const sets = Object.entries(options.set ?? {}).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
  const yaml = await helm([
    "template",
    options.release,
    "charts/dataverket",
    "-n",
    options.namespace,
    ...sets,
  ]);
  const objects = (loadAll(yaml) as (RenderedObject | null)[]).filter(
    (o): o is RenderedObject => o !== null && typeof o === "object",
  );
  return { yaml, objects };
}
