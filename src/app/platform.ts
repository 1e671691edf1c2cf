import { readFile } from "node:fs/promises";
import type { CoordinationV1Api } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import {
  APPLY_ORDER,
  DirectoryPlatformSource,
  KubeLeaseElector,
  KubernetesPlatformSource,
  PlatformLeadership,
  PlatformReconciler,
  type PlatformSource,
  PlatformSync,
} from "../../controllers/index.js";
import type { Config } from "../config/index.js";
import { LeaseStore } from "../contexts/runtime/index.js";
import type { Database } from "../db/index.js";
import type { Lifecycle } from "../lifecycle/index.js";
import { Controller, realClock, WorkQueue } from "../reconcile/index.js";
import type { Logger } from "../observability/index.js";
import { readPlatformDirectory } from "../platform-config/index.js";
import { newHolder } from "./controllers.js";
import type { Services } from "./services.js";

/**
 * Applies a directory of platform configuration (the embedded default, or a GitOps checkout)
 * to the platform and inventory contexts, kinds that others refer to first. Returns a summary
 * per kind; refused objects are logged with their reason.
 */
export async function syncPlatformDirectory(
  services: Services,
  dir: string,
  log: Logger,
): Promise<{ applied: Map<string, number>; refused: number }> {
  const docs = await readPlatformDirectory(dir);
  const order = (kind: string) => {
    const i = APPLY_ORDER.indexOf(kind);
    return i < 0 ? APPLY_ORDER.length : i;
  };
  docs.sort((a, b) => order(a.kind) - order(b.kind));
  const sync = new PlatformSync(services);
  const applied = new Map<string, number>();
  let refused = 0;
  for (const doc of docs) {
    const result = await sync.apply({
      kind: doc.kind,
      name: doc.name,
      generation: doc.generation,
      spec: (doc.raw as { spec?: unknown }).spec,
    });
    if (result.ok) {
      applied.set(doc.kind, (applied.get(doc.kind) ?? 0) + 1);
    } else {
      refused++;
      log.warn(
        { kind: doc.kind, name: doc.name, file: doc.file, reason: result.reason },
        result.message,
      );
    }
  }
  log.info(
    { dir, applied: Object.fromEntries(applied), refused },
    "platform configuration applied",
  );
  return { applied, refused };
}

export interface PlatformControllersOptions {
  readonly services: Services;
  /** Where platform objects come from: a cluster, or a directory of the same YAML. */
  readonly source: PlatformSource;
  readonly holder: string;
  readonly settings: Pick<Config["controller"], "leaseTtlMs" | "leaseRenewMs" | "leaseRetryMs">;
  /** With a cluster: the Kubernetes Lease the leader must hold. */
  readonly kube?: { api: CoordinationV1Api; namespace: string };
  readonly log: Logger;
  readonly metrics?: Registry;
  /** The database of the lease renewals (a pool of their own); the services' by default. */
  readonly leaseDb?: Database;
}

export interface RunningPlatformControllers {
  readonly source: PlatformSource;
  readonly leadership: PlatformLeadership;
  stop(): Promise<void>;
}

/** The name of the leader-election Lease of the platform controllers. */
export const PLATFORM_LEASE_NAME = "dataverket-platform-controller";

/**
 * Starts the platform controllers: the source's watch feeds keys into a work queue, and the
 * replica that leads (Kubernetes Lease and PostgreSQL lease) reconciles them, fenced.
 */
export async function startPlatformControllers(
  options: PlatformControllersOptions,
): Promise<RunningPlatformControllers> {
  const { services, source, holder, settings, log } = options;
  const clock = realClock;
  const queue = new WorkQueue({ clock, ratePerSecond: 100, burst: 200 });
  const leadership: PlatformLeadership = new PlatformLeadership({
    leases: new LeaseStore(options.leaseDb ?? services.db),
    holder,
    ttlMs: settings.leaseTtlMs,
    renewMs: settings.leaseRenewMs,
    retryMs: settings.leaseRetryMs,
    ...(options.kube
      ? {
          kube: new KubeLeaseElector({
            api: options.kube.api,
            namespace: options.kube.namespace,
            name: PLATFORM_LEASE_NAME,
            identity: holder,
            log: log.child({ component: "leader-election" }),
            timings: {
              leaseDurationMs: settings.leaseTtlMs,
              renewDeadlineMs: settings.leaseRenewMs,
              retryPeriodMs: settings.leaseRetryMs,
            },
          }),
        }
      : {}),
    clock,
    log: log.child({ component: "platform-leader", holder }),
    // A new leader looks at everything; a former one drops what it had queued.
    onStartedLeading: () => {
      for (const key of source.keys()) queue.add(key, "resync");
    },
    onStoppedLeading: () => queue.remove(() => true),
  });
  const sync = new PlatformSync(services, { fence: leadership.fence });
  const controller = new Controller({
    name: "platform",
    reconciler: new PlatformReconciler(source, sync),
    queue,
    concurrency: 2,
    log: log.child({ controller: "platform", source: source.name }),
    clock,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  await source.start((key) => {
    if (leadership.leading) queue.add(key);
  });
  controller.start();
  await leadership.start();
  log.info({ source: source.name, holder }, "platform controllers started");
  return {
    source,
    leadership,
    async stop() {
      await source.stop();
      await leadership.stop();
      queue.shutdown();
      await controller.stop();
    },
  };
}

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
  readonly leaseDb?: Database;
  /** The replica's name; the same as its tenant controllers' so `dv leases` shows one replica. */
  readonly holder?: string;
}): Promise<{
  source: "kubernetes" | "directory";
  summary?: Awaited<ReturnType<typeof syncPlatformDirectory>>;
}> {
  const { config, services, lifecycle } = options;
  const log = options.log.child({ component: "platform" });
  const holder = options.holder ?? newHolder();
  const common = {
    services,
    holder,
    settings: config.controller,
    log,
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.leaseDb ? { leaseDb: options.leaseDb } : {}),
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
    const running = await startPlatformControllers({
      ...common,
      source: new KubernetesPlatformSource(kc, log),
      kube: { api: kc.makeApiClient(CoordinationV1Api), namespace },
    });
    lifecycle.add("platform controllers", () => running.stop());
    return { source: "kubernetes" };
  }
  const summary = await syncPlatformDirectory(services, config.platform.configDir, log);
  const running = await startPlatformControllers({
    ...common,
    source: new DirectoryPlatformSource(config.platform.configDir, log),
  });
  lifecycle.add("platform controllers", () => running.stop());
  return { source: "directory", summary };
}

const SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
