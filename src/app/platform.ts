import { readFile } from "node:fs/promises";
import type { Registry } from "prom-client";
import {
  DirectoryPlatformSource,
  KubernetesPlatformSource,
  type PlatformDirectorySummary,
  type PlatformManagerOptions,
  PlatformSync,
  startPlatformManager,
  syncPlatformDirectory,
} from "../../controllers/index.js";
import type { Config } from "../config/index.js";
import { LeaseStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { realClock } from "../reconcile/index.js";
import type { Logger } from "../observability/index.js";
import { newHolder } from "./controllers.js";
import type { Services } from "./services.js";

/**
 * The platform controllers of a process, from its configuration: with a cluster (in-cluster
 * service account, or a kubeconfig) they watch the custom resources and elect a leader with a
 * Lease; without one they apply `platform.configDir` at once (so tenants' reconcilers find the
 * datacenters and pools at start) and then watch the directory for changes.
 */
export async function startPlatform(options: {
  readonly config: Config;
  readonly services: Services;
  readonly log: Logger;
  readonly metrics?: Registry;
  readonly lifecycle: Lifecycle;
  /** The database of the lease renewals (a pool of their own); the services' by default. */
  readonly leaseDb?: Database;
  /** The replica's name; the same as its tenant controllers' so `dv leases` shows one replica. */
  readonly holder?: string;
}): Promise<{ source: "kubernetes" | "directory"; summary?: PlatformDirectorySummary }> {
  const { config, services, lifecycle } = options;
  const log = options.log.child({ component: "platform" });
  const common: Omit<PlatformManagerOptions, "source"> = {
    sync: (fence) => new PlatformSync(services, { fence }),
    leases: new LeaseStore(options.leaseDb ?? services.db),
    holder: options.holder ?? newHolder(),
    settings: config.controller,
    clock: realClock,
    log,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  };
  const { inCluster, kubeconfig } = config.kubernetes;
  if (inCluster || kubeconfig) {
    // Loaded only here: the client weighs most of a process's start-up.
    const { CoordinationV1Api, KubeConfig } = await import("@kubernetes/client-node");
    const kc = new KubeConfig();
    if (inCluster) kc.loadFromCluster();
    else kc.loadFromFile(kubeconfig ?? "");
    const namespace =
      config.kubernetes.namespace ??
      (inCluster
        ? (await readFile(SERVICE_ACCOUNT_NAMESPACE, "utf8").catch(() => "default")).trim()
        : kc.getContextObject(kc.getCurrentContext())?.namespace) ??
      "default";
    const running = await startPlatformManager({
      ...common,
      source: new KubernetesPlatformSource(kc, log),
      kube: { api: kc.makeApiClient(CoordinationV1Api), namespace },
    });
    lifecycle.add("platform controllers", () => running.stop());
    return { source: "kubernetes" };
  }
  const summary = await syncPlatformDirectory(services, config.platform.configDir, log);
  const running = await startPlatformManager({
    ...common,
    source: new DirectoryPlatformSource(config.platform.configDir, log),
  });
  lifecycle.add("platform controllers", () => running.stop());
  return { source: "directory", summary };
}

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
