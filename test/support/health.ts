// gitops-health (hack/health.sh): health as Flux (kstatus) and Argo CD (the health Lua in
// gopher-lua, in Argo CD v3.6's flow) compute it, for the GitOps health tests.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(import.meta.dirname, "../..");

/** The argocd-cm patch of docs/gitops, which gives every kind of ours health.lua. */
export const ARGOCD_CM_PATCH = join(root, "docs/gitops/argocd/argocd-cm-patch.yaml");

/** One tool's verdict on one object. */
export interface Verdict {
  readonly status: string;
  readonly message: string;
}

/** What gitops-health prints for one object. */
export interface HealthRow {
  readonly kind: string;
  readonly name: string;
  readonly kstatus: Verdict;
  readonly argocd: Verdict;
}

/**
 * Builds gitops-health when missing or built from other sources, and returns its path. The first
 * build on a machine fetches kstatus and gopher-lua from the Go module proxy and compiles them.
 */
export async function installHealthTool(): Promise<string> {
  const { stdout } = await run("bash", [join(root, "hack/health.sh"), "bin"], {
    timeout: 10 * 60_000,
  });
  return stdout.trim();
}

/**
 * Runs gitops-health on `objects` (one object, or what `kubectl get -o json` prints for a list)
 * with the health scripts of an argocd-cm (`{ argocdCm }`, the docs' patch by default) or one
 * Lua file (`{ lua }`), and returns a row per object.
 * @throws when the tool exits non-zero, with what it printed.
 */
export function gitopsHealth(
  bin: string,
  objects: unknown,
  script: { readonly argocdCm?: string; readonly lua?: string } = {},
): Promise<HealthRow[]> {
  const args = script.lua
    ? ["--lua", script.lua]
    : ["--argocd-cm", script.argocdCm ?? ARGOCD_CM_PATCH];
  return new Promise((resolve, reject) => {
    const child = execFile(bin, [...args, "-o", "json"], (err, stdout, stderr) => {
      if (err)
        reject(new Error(`gitops-health ${args.join(" ")} failed: ${stderr}`, { cause: err }));
      else resolve(JSON.parse(stdout) as HealthRow[]);
    });
    child.stdin?.end(JSON.stringify(objects));
  });
}
