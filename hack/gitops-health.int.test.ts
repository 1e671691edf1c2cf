// What Flux and Argo CD make of objects the platform controller wrote on a real API server
// (hack/kube.sh), computed by their own libraries: gitops-health (hack/health.sh) runs kstatus
// and health.lua in gopher-lua inside Argo CD v3.6's health flow on `kubectl get -o json`.
// docs/gitops.md shows these verdicts; this test keeps them true.
//
// It owns the cluster-scoped platform kinds while it runs (it starts a platform controller), as
// controllers/platform/kube.int.test.ts does, so vitest runs it after the integration tier, not
// beside it (the "gitops-health" project in vitest.config.ts).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { gitopsHealth, type HealthRow, installHealthTool } from "../test/support/health.js";
import {
  coordinationApi,
  freshPlatformApi,
  kubectl,
  kubectlOk,
  testKubeConfig,
} from "../test/support/kube.js";
import { createServices, type Services } from "../src/app/services.js";
import { LeaseStore } from "../src/contexts/runtime/index.js";
import { inTransaction } from "../src/db/index.js";
import { newId } from "../src/kernel/index.js";
import { createLogger } from "../src/observability/index.js";
import { realClock } from "../src/reconcile/index.js";
import {
  KubernetesPlatformSource,
  PLATFORM_FINALIZER,
  PLATFORM_LEASE_NAME,
  type PlatformManager,
  PlatformSync,
  startPlatformManager,
} from "../controllers/index.js";

const log = createLogger({
  level: process.env.DV_TEST_LOG === "1" ? "debug" : "silent",
  service: "test",
  datacenterId: "dc1",
});

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

interface Obj {
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly generation: number;
    readonly finalizers?: string[];
    readonly deletionTimestamp?: string;
  };
  readonly status?: { readonly observedGeneration?: number; readonly conditions?: Condition[] };
}

const condition = (o: Obj, type: string): Condition | undefined =>
  o.status?.conditions?.find((c) => c.type === type);

let tool = "";
let t: TestDatabase;
let services: Services;
let manager: PlatformManager | undefined;

async function getObject(resource: string): Promise<Obj | undefined> {
  const r = await kubectl(["get", resource, "-o", "json"]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Obj) : undefined;
}

/** Waits until `resource` satisfies `ready`, and returns it as the API server serves it. */
function waitFor(resource: string, ready: (o: Obj) => boolean, what: string): Promise<Obj> {
  return eventually(
    async () => {
      const o = await getObject(resource);
      return o && ready(o) ? o : undefined;
    },
    60_000,
    what,
  );
}

/** Both tools' verdicts on one live object. */
async function verdicts(o: Obj): Promise<HealthRow> {
  const [row] = await gitopsHealth(tool, o);
  if (!row) throw new Error("gitops-health printed nothing");
  expect(row).toMatchObject({ kind: o.kind, name: o.metadata.name });
  return row;
}

const apply = (yaml: string): Promise<string> => kubectlOk(["apply", "-f", "-"], yaml);
const GROUP_VERSION = "platform.dataverket.io/v1alpha1";

beforeAll(async () => {
  [tool] = await Promise.all([installHealthTool(), freshPlatformApi()]);
  await kubectl(["delete", "lease", PLATFORM_LEASE_NAME, "-n", "default", "--ignore-not-found"]);
  t = await createTestDatabase();
  services = createServices(t.db, newId);
}, 600_000);

afterAll(async () => {
  await manager?.stop();
  await t?.drop();
  await freshPlatformApi();
});

describe("Flux and Argo CD health of live objects, by kstatus and gopher-lua", () => {
  it("an object no controller has seen yet: InProgress and Progressing", async () => {
    await apply(`apiVersion: ${GROUP_VERSION}
kind: MachineClass
metadata: { name: gh-unobserved }
spec: { cpuCores: 1, memoryMiB: 1024 }
`);
    const o = await waitFor("mc/gh-unobserved", () => true, "the object");
    expect(o.status?.observedGeneration).toBe(-1); // the CRD default
    expect(await verdicts(o)).toMatchObject({
      kstatus: {
        status: "InProgress",
        message: "MachineClass generation is 1, but latest observed generation is -1",
      },
      argocd: {
        status: "Progressing",
        message: "waiting for the controller to observe generation 1",
      },
    });
  });

  it("Ready: Current and Healthy", async () => {
    const kc = testKubeConfig();
    manager = await startPlatformManager({
      sync: (fence) => new PlatformSync(services, { fence }),
      leases: new LeaseStore(services.db),
      source: new KubernetesPlatformSource(kc, log),
      holder: "gitops-health",
      settings: { leaseTtlMs: 3_000, leaseRenewMs: 1_000, leaseRetryMs: 300 },
      kube: { api: coordinationApi(kc), namespace: "default" },
      clock: realClock,
      log,
    });
    await apply(`apiVersion: ${GROUP_VERSION}
kind: Datacenter
metadata: { name: gh1 }
spec: { site: gh, failureDomain: gh-a }
---
apiVersion: ${GROUP_VERSION}
kind: NetworkPool
metadata: { name: gh1-tenant }
spec: { datacenter: gh1, vlanRanges: [{ start: 100, end: 199 }], prefixes: [10.200.0.0/16] }
`);
    const o = await waitFor(
      "np/gh1-tenant",
      (x) => condition(x, "Ready")?.status === "True",
      "the pool to be Ready",
    );
    expect(await verdicts(o)).toEqual({
      kind: "NetworkPool",
      name: "gh1-tenant",
      kstatus: { status: "Current", message: "Resource is Ready" },
      argocd: { status: "Healthy", message: "generation 1 is applied" },
    });
    const unobserved = await waitFor(
      "mc/gh-unobserved",
      (x) => condition(x, "Ready")?.status === "True",
      "the machine class to be Ready",
    );
    expect((await verdicts(unobserved)).argocd.status).toBe("Healthy");
  });

  it("waiting for a datacenter that does not exist (Reconciling): InProgress and Progressing", async () => {
    await apply(`apiVersion: ${GROUP_VERSION}
kind: NetworkPool
metadata: { name: gh9-tenant }
spec: { datacenter: gh9, vlanRanges: [{ start: 100, end: 199 }] }
`);
    const o = await waitFor(
      "np/gh9-tenant",
      (x) => condition(x, "Reconciling")?.status === "True",
      "the pool to wait for gh9",
    );
    const waiting = condition(o, "Reconciling") as Condition;
    expect(waiting.reason).toBe("DependencyMissing");
    expect(waiting.message).toContain("gh9");
    expect(condition(o, "Ready")).toMatchObject({ status: "False", reason: "DependencyMissing" });
    expect(await verdicts(o)).toMatchObject({
      kstatus: { status: "InProgress", message: waiting.message },
      argocd: { status: "Progressing", message: waiting.message },
    });
  });

  it("an overlap (Stalled): Failed and Degraded, with the reason and the field", async () => {
    await apply(`apiVersion: ${GROUP_VERSION}
kind: NetworkPool
metadata: { name: gh1-clash }
spec: { datacenter: gh1, prefixes: [10.200.0.0/24] }
`);
    const o = await waitFor(
      "np/gh1-clash",
      (x) => condition(x, "Stalled")?.status === "True",
      "the pool to stall",
    );
    const stalled = condition(o, "Stalled") as Condition;
    expect(stalled.reason).toBe("Overlap");
    expect(stalled.message).toContain("spec.prefixes");
    expect(await verdicts(o)).toMatchObject({
      kstatus: { status: "Failed", message: stalled.message },
      argocd: { status: "Degraded", message: `Overlap: ${stalled.message}` },
    });
  });

  it("a deletion held while the pool is in use: Terminating, and Argo CD says what holds it", async () => {
    const owner = { kind: "network", id: randomUUID() };
    await inTransaction(t.db, (tx) =>
      services.inventory.reserveVlan(tx, { networkPool: "gh1-tenant", owner }),
    );
    await kubectlOk(["delete", "np/gh1-tenant", "--wait=false"]);
    const o = await waitFor(
      "np/gh1-tenant",
      (x) => condition(x, "Reconciling")?.reason === "InUse",
      "the pool to say what holds its deletion",
    );
    expect(o.metadata.deletionTimestamp).toBeDefined();
    expect(o.metadata.finalizers).toEqual([PLATFORM_FINALIZER]);
    const held = condition(o, "Reconciling") as Condition;
    expect(held.message).toContain(owner.id);
    expect(await verdicts(o)).toMatchObject({
      kstatus: { status: "Terminating", message: "Resource scheduled for deletion" },
      argocd: {
        status: "Progressing",
        message: `held by finalizer ${PLATFORM_FINALIZER}: ${held.message}`,
      },
    });

    await inTransaction(t.db, (tx) => services.inventory.releaseAll(tx, owner));
    const gone = await kubectl(["wait", "np/gh1-tenant", "--for=delete", "--timeout=60s"]);
    expect(gone.code).toBe(0);
  });
});
