// The test Kubernetes API server (hack/kube.sh): kubectl, a client, and a clean slate of our kinds.
import { execFile } from "node:child_process";
import { CoordinationV1Api, KubeConfig } from "@kubernetes/client-node";
import { KINDS } from "../../crds/index.js";
import { TEST_KUBECONFIG, TEST_KUBECTL } from "./services.js";

export interface KubectlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the pinned kubectl against the test API server; never throws on a non-zero exit. */
export function kubectl(args: readonly string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      TEST_KUBECTL,
      ["--kubeconfig", TEST_KUBECONFIG, ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** kubectl that must succeed: returns stdout, or throws with stderr. */
export async function kubectlOk(args: readonly string[], input?: string): Promise<string> {
  const r = await kubectl(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

export function testKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(TEST_KUBECONFIG);
  return kc;
}

export const coordinationApi = (kc = testKubeConfig()): CoordinationV1Api =>
  kc.makeApiClient(CoordinationV1Api);

/** Every resource name of our kinds, comma-separated, for kubectl. */
export const ALL_PLATFORM_KINDS = KINDS.map((k) => `${k.plural}.platform.dataverket.io`).join(",");

/**
 * Installs the generated CRDs and removes every object of our kinds left by an earlier run
 * (finalizers stripped, as no controller is running yet).
 */
export async function freshPlatformApi(): Promise<void> {
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", "config/crd/bases"]);
  await kubectlOk([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "-f",
    "config/crd/bases",
  ]);
  const names = (await kubectlOk(["get", ALL_PLATFORM_KINDS, "-o", "name"]))
    .split("\n")
    .filter(Boolean);
  for (const name of names)
    await kubectl(["patch", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}']);
  if (names.length > 0) await kubectlOk(["delete", ...names, "--wait=true", "--timeout=60s"]);
}
