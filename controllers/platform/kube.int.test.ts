// Platform controllers against a real kube-apiserver (hack/kube.sh) and PostgreSQL: the
// generated CRDs, the samples, validation by the API server, status, finalizers, leader election.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import {
  ALL_PLATFORM_KINDS,
  coordinationApi,
  freshPlatformApi,
  kubectl,
  kubectlOk,
  testKubeConfig,
} from "../../test/support/kube.js";
import { createServices, type Services } from "../../src/app/services.js";
import { LeaseStore } from "../../src/contexts/runtime/index.js";
import { inTransaction } from "../../src/db/index.js";
import { newId } from "../../src/kernel/index.js";
import { createLogger } from "../../src/observability/index.js";
import { realClock } from "../../src/reconcile/index.js";
import { startTcpRelay } from "../../test/support/tcp-relay.js";
import { KubeConfig } from "@kubernetes/client-node";
import {
  KubernetesPlatformSource,
  PLATFORM_FINALIZER,
  PLATFORM_LEASE_NAME,
  type PlatformManager,
  PlatformSync,
  startPlatformManager,
} from "../index.js";

const log = createLogger({
  level: process.env.DV_TEST_LOG === "1" ? "debug" : "silent",
  service: "test",
  datacenterId: "dc1",
});
const FAST = { leaseTtlMs: 3_000, leaseRenewMs: 1_000, leaseRetryMs: 300 };

let t: TestDatabase;
let services: Services;
const running: PlatformManager[] = [];

async function startReplica(holder: string): Promise<PlatformManager> {
  const kc = testKubeConfig();
  const r = await startPlatformManager({
    sync: (fence) => new PlatformSync(services, { fence }),
    leases: new LeaseStore(services.db),
    source: new KubernetesPlatformSource(kc, log.child({ holder })),
    holder,
    settings: FAST,
    kube: { api: coordinationApi(kc), namespace: "default" },
    clock: realClock,
    log: log.child({ holder }),
  });
  running.push(r);
  return r;
}

interface Obj {
  metadata: {
    generation: number;
    finalizers?: string[];
    deletionTimestamp?: string;
  };
  status?: {
    observedGeneration?: number;
    conditions?: { type: string; status: string; reason: string; message: string }[];
    usedBy?: string[];
  };
}

async function getObject(resource: string): Promise<Obj | undefined> {
  const r = await kubectl(["get", resource, "-o", "json"]);
  return r.code === 0 ? (JSON.parse(r.stdout) as Obj) : undefined;
}

const condition = (o: Obj | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);

async function leaseHolder(): Promise<string | undefined> {
  const out = await kubectl([
    "get",
    "lease",
    PLATFORM_LEASE_NAME,
    "-n",
    "default",
    "-o",
    "jsonpath={.spec.holderIdentity}",
  ]);
  return out.code === 0 ? out.stdout : undefined;
}

beforeAll(async () => {
  await freshPlatformApi();
  await kubectl(["delete", "lease", PLATFORM_LEASE_NAME, "-n", "default", "--ignore-not-found"]);
  t = await createTestDatabase();
  services = createServices(t.db, newId);
});

afterAll(async () => {
  for (const r of running) await r.stop();
  await t?.drop();
});

describe("platform custom resources on a real API server", () => {
  it("accepts every generated CRD, with short names and categories", async () => {
    const out = await kubectlOk([
      "api-resources",
      "--api-group=platform.dataverket.io",
      "-o",
      "wide",
    ]);
    for (const [plural, short] of [
      ["datacenters", "dc"],
      ["networkpools", "np"],
      ["serverpools", "sp"],
      ["machineclasses", "mc"],
      ["platformpolicies", "pp"],
      ["recoverypolicies", "rp"],
    ]) {
      expect(out).toMatch(
        new RegExp(`^${plural}\\s+${short}\\s+platform.dataverket.io/v1alpha1\\s+false`, "m"),
      );
    }
    expect(out).toContain("dataverket,dataverket-platform");

    // Before any controller looked at it, an object says so (kstatus: in progress, not ready).
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: platform.dataverket.io/v1alpha1
kind: MachineClass
metadata: { name: unobserved }
spec: { cpuCores: 1, memoryMiB: 1024 }
`,
    );
    const fresh = await getObject("mc/unobserved");
    expect(fresh?.status?.observedGeneration).toBe(-1);
    expect(fresh?.metadata.generation).toBe(1);
    await kubectlOk(["delete", "mc/unobserved"]);
  });

  it("refuses an invalid VLAN range, naming the field", async () => {
    const r = await kubectl([
      "apply",
      "-f",
      "config/samples/invalid/networkpool-vlan-range-reversed.yaml",
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("spec.vlanRanges[0].start");
    expect(r.stderr).toContain("start must not be above end");
    expect(r.stderr).not.toContain("overlap");
    expect(await getObject("networkpool/dc1-reversed")).toBeUndefined();

    const overlapping = `apiVersion: platform.dataverket.io/v1alpha1
kind: NetworkPool
metadata: { name: dc1-overlap }
spec:
  datacenter: dc1
  vlanRanges: [{ start: 10, end: 20 }, { start: 15, end: 30 }]
`;
    const o = await kubectl(["apply", "-f", "-"], overlapping);
    expect(o.code).not.toBe(0);
    expect(o.stderr).toContain("spec.vlanRanges");
    expect(o.stderr).toContain("VLAN ranges must not overlap");

    const unknownField = `apiVersion: platform.dataverket.io/v1alpha1
kind: MachineClass
metadata: { name: typo }
spec: { cpuCores: 4, memoryMiB: 8192, memoryGiB: 8 }
`;
    const u = await kubectl(["apply", "-f", "-"], unknownField);
    expect(u.code).not.toBe(0);
    expect(u.stderr).toContain('unknown field "spec.memoryGiB"');
  });

  it("refuses prefixes that are none, have host bits set or repeat, naming each field", async () => {
    const r = await kubectl([
      "apply",
      "-f",
      "config/samples/invalid/networkpool-prefix-invalid.yaml",
    ]);
    expect(r.code).not.toBe(0);
    const lines = r.stderr.split("\n");
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\* spec\.prefixes\[0\]: Invalid value: "10\.300\.0\.0\/33": must be a CIDR prefix such as 10\.0\.0\.0\/16/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^\* spec\.prefixes\[1\]: Invalid value: "10\.81\.0\.1\/16": must not have host bits set/,
      ),
    );
    expect(lines).toContain(
      "* spec.prefixes: Invalid value: prefixes must not overlap (or repeat)",
    );
    // 10.82.0.0/16 itself is a fine prefix: only its repetition is refused.
    expect(r.stderr).not.toContain("spec.prefixes[2]");
    expect(r.stderr).not.toContain("spec.prefixes[3]");
    expect(await getObject("networkpool/dc1-bad-prefixes")).toBeUndefined();

    const pool = (prefixes: string) => `apiVersion: platform.dataverket.io/v1alpha1
kind: NetworkPool
metadata: { name: dc1-probe }
spec: { datacenter: dc1, prefixes: ${prefixes} }
`;
    const v6 = await kubectl(["apply", "-f", "-"], pool('["fd00:64::1/48"]'));
    expect(v6.stderr).toContain(
      'spec.prefixes[0]: Invalid value: "fd00:64::1/48": must not have host bits set',
    );
    // The same rules let good IPv4 and IPv6 prefixes through (checked without storing them).
    const good = await kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      pool('["10.96.0.0/16", "10.97.0.0/24", "fd00:64::/48"]'),
    );
    expect(good.stderr).toBe("");
    expect(good.code).toBe(0);
  });

  it("describes every field to kubectl explain", async () => {
    const fields = [
      "networkpools.spec.prefixes",
      "networkpools.spec.vlanRanges.start",
      "networkpools.spec.vlanRanges.end",
      "serverpools.spec.servers",
      "serverpools.spec.generated",
      "platformpolicies.spec.defaults",
      "networkpools.status.conditions",
      ...[
        "datacenters",
        "networkpools",
        "serverpools",
        "machineclasses",
        "platformpolicies",
        "recoverypolicies",
      ].flatMap((plural) => [`${plural}.spec`, `${plural}.status`]),
    ];
    for (const field of fields) {
      const out = await kubectlOk(["explain", field]);
      expect(out, field).toMatch(/DESCRIPTION:\n\s+\S/);
      expect(out, field).not.toContain("<no description>");
    }
  });

  it("brings every sample to Ready, as kubectl wait and kubectl get show", async () => {
    await startReplica("replica-a");
    await kubectlOk(["apply", "-k", "config/samples"]);
    const wait = await kubectl([
      "wait",
      ALL_PLATFORM_KINDS,
      "--all",
      "--for=condition=Ready",
      "--timeout=90s",
    ]);
    expect(wait.stderr).toBe("");
    expect(wait.code).toBe(0);
    expect(wait.stdout.trim().split("\n")).toHaveLength(13);

    const items = JSON.parse(await kubectlOk(["get", ALL_PLATFORM_KINDS, "-o", "json"])) as {
      items: Obj[];
    };
    for (const o of items.items) {
      expect(o.status?.observedGeneration).toBe(o.metadata.generation);
      expect(o.metadata.finalizers).toEqual([PLATFORM_FINALIZER]);
    }

    const table = await kubectlOk(["get", "networkpools"]);
    expect(table.split("\n")[0]).toMatch(/^NAME\s+DATACENTER\s+DEFAULT\s+READY\s+STATUS\s+AGE$/);
    expect(table).toMatch(/^dc1-tenant\s+dc1\s+true\s+True\s+generation 1 is applied\s+\d+s$/m);
    const servers = await kubectlOk(["get", "sp", "dc1-rack-a"]);
    expect(servers).toMatch(/^dc1-rack-a\s+dc1\s+64\s+64\s+True/m);

    // The platform and inventory contexts hold what the cluster says.
    const pools = await t.admin.query<{ name: string }>(
      "SELECT name FROM inventory.network_pools ORDER BY name",
    );
    expect(pools.map((p) => p.name)).toContain("dc1-tenant");
  });

  it("waits (Reconciling) for a datacenter that does not exist yet, then becomes Ready", async () => {
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: platform.dataverket.io/v1alpha1
kind: NetworkPool
metadata: { name: dc2-tenant }
spec: { datacenter: dc2, vlanRanges: [{ start: 100, end: 199 }], prefixes: [10.128.0.0/16] }
`,
    );
    const waiting = await eventually(
      async () => {
        const c = condition(await getObject("np/dc2-tenant"), "Reconciling");
        return c?.status === "True" ? c : undefined;
      },
      30_000,
      "the pool to say it waits for dc2",
    );
    expect(waiting.reason).toBe("DependencyMissing");
    expect(waiting.message).toContain("dc2");

    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: platform.dataverket.io/v1alpha1
kind: Datacenter
metadata: { name: dc2 }
spec: { site: osl, failureDomain: osl-b }
`,
    );
    const ready = await kubectl([
      "wait",
      "np/dc2-tenant",
      "--for=condition=Ready",
      "--timeout=60s",
    ]);
    expect(ready.code).toBe(0);
    expect(condition(await getObject("np/dc2-tenant"), "Reconciling")).toBeUndefined();
  });

  it("stalls a pool whose prefix or VLAN range overlaps another pool's, naming both fields and the pool", async () => {
    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: platform.dataverket.io/v1alpha1
kind: NetworkPool
metadata: { name: dc1-clash }
spec: { datacenter: dc1, prefixes: [10.200.0.0/16, 10.64.0.0/16] }
`,
    );
    const stalled = await kubectl([
      "wait",
      "np/dc1-clash",
      "--for=condition=Stalled",
      "--timeout=60s",
    ]);
    expect(stalled.code).toBe(0);
    const o = await getObject("np/dc1-clash");
    expect(condition(o, "Stalled")?.reason).toBe("Overlap");
    // It names its own field, the other pool, and the other pool's field.
    expect(condition(o, "Stalled")?.message).toBe(
      'spec.prefixes[1] 10.64.0.0/16 overlaps NetworkPool "dc1-tenant" spec.prefixes[0] 10.64.0.0/12',
    );
    expect(condition(o, "Ready")?.status).toBe("False");
    expect(o?.status?.observedGeneration).toBe(o?.metadata.generation);
    await kubectlOk(["delete", "np/dc1-clash", "--timeout=60s"]);

    await kubectlOk(
      ["apply", "-f", "-"],
      `apiVersion: platform.dataverket.io/v1alpha1
kind: NetworkPool
metadata: { name: dc1-vlan-clash }
spec: { datacenter: dc1, vlanRanges: [{ start: 4000, end: 4010 }, { start: 3990, end: 3995 }] }
`,
    );
    const vlans = await kubectl([
      "wait",
      "np/dc1-vlan-clash",
      "--for=condition=Stalled",
      "--timeout=60s",
    ]);
    expect(vlans.code).toBe(0);
    expect(condition(await getObject("np/dc1-vlan-clash"), "Stalled")?.message).toBe(
      'spec.vlanRanges[1] 3990-3995 overlaps NetworkPool "dc1-tenant" spec.vlanRanges[0] 100-3999',
    );
    await kubectlOk(["delete", "np/dc1-vlan-clash", "--timeout=60s"]);
  });

  it("holds a pool in use with its finalizer, says what uses it, and lets go once it is free", async () => {
    const owner = { kind: "network", id: randomUUID() };
    await inTransaction(t.db, (tx) =>
      services.inventory.reserveVlan(tx, { networkPool: "dc2-tenant", owner }),
    );
    await kubectlOk(["delete", "np/dc2-tenant", "--wait=false"]);
    const held = await eventually(
      async () => {
        const o = await getObject("np/dc2-tenant");
        const c = condition(o, "Reconciling");
        return c?.reason === "InUse" ? { o, c } : undefined;
      },
      30_000,
      "the pool to say what holds it",
    );
    expect(held.o?.metadata.deletionTimestamp).toBeDefined();
    expect(held.c.message).toContain(owner.id);
    // What holds it is in status.usedBy too, though the pool was last applied before it was used.
    expect(held.o?.status?.usedBy).toEqual([`network ${owner.id}`]);

    await inTransaction(t.db, (tx) => services.inventory.releaseAll(tx, owner));
    const gone = await kubectl(["wait", "np/dc2-tenant", "--for=delete", "--timeout=60s"]);
    expect(gone.code).toBe(0);
    const [row] = await t.admin.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM inventory.network_pools WHERE name = 'dc2-tenant'",
    );
    expect(row?.n).toBe(0);
  });

  it("hands leadership over: one leader at a time, and the successor reconciles", async () => {
    const a = running[0];
    if (!a) throw new Error("no first replica");
    const b = await startReplica("replica-b");
    expect(await leaseHolder()).toBe("replica-a");
    expect(a.leadership.leading).toBe(true);
    // B stays a follower while A renews.
    await new Promise((r) => setTimeout(r, 2 * FAST.leaseTtlMs));
    expect(b.leadership.leading).toBe(false);
    expect(await leaseHolder()).toBe("replica-a");

    await a.stop();
    await eventually(
      async () => (b.leadership.leading ? true : undefined),
      15_000,
      "replica B to lead",
    );
    expect(await leaseHolder()).toBe("replica-b");

    await kubectlOk(["patch", "mc/m1-small", "--type=merge", "-p", '{"spec":{"cpuCores":12}}']);
    const done = await eventually(
      async () => {
        const o = await getObject("mc/m1-small");
        return o?.status?.observedGeneration === 2 && condition(o, "Ready")?.status === "True"
          ? o
          : undefined;
      },
      30_000,
      "the change to be reconciled by B",
    );
    expect(done.metadata.generation).toBe(2);
    const [status] = await t.admin.query<{ cpu: number }>(
      "SELECT (status->>'cpuCores')::int AS cpu FROM platform.objects WHERE kind = 'MachineClass' AND name = 'm1-small'",
    );
    expect(status?.cpu).toBe(12);
  });

  it("resumes its watches after the API server was unreachable: nothing missed, nothing replayed", async () => {
    const base = testKubeConfig();
    const kubePort = Number(new URL(base.getCurrentCluster()?.server ?? "").port);
    const relay = await startTcpRelay(kubePort);
    const relayed = new KubeConfig();
    relayed.loadFromOptions({
      clusters: base.clusters.map((c) => ({ ...c, server: `https://127.0.0.1:${relay.port}` })),
      users: base.users,
      contexts: base.contexts,
      currentContext: base.currentContext,
    });
    const machineClass = (name: string) => `apiVersion: platform.dataverket.io/v1alpha1
kind: MachineClass
metadata: { name: ${name} }
spec: { cpuCores: 2, memoryMiB: 4096 }
`;
    await kubectlOk(["apply", "-f", "-"], machineClass("doomed"));
    const source = new KubernetesPlatformSource(relayed, log);
    const seen: string[] = [];
    await source.start((key) => seen.push(key));
    try {
      expect(source.get("MachineClass", "doomed")).toBeDefined();
      seen.length = 0;

      await relay.cut();
      await kubectlOk(["patch", "mc/m1-large", "--type=merge", "-p", '{"spec":{"cpuCores":40}}']);
      await kubectlOk(["apply", "-f", "-"], machineClass("m2-new"));
      await kubectlOk(["delete", "mc/doomed", "--timeout=60s"]);
      await new Promise((r) => setTimeout(r, 2_000));
      // The cut was real: the cache has not seen any of it.
      expect((source.get("MachineClass", "m1-large")?.spec as { cpuCores: number }).cpuCores).toBe(
        32,
      );
      expect(source.get("MachineClass", "m2-new")).toBeUndefined();

      await relay.heal();
      await eventually(
        async () =>
          (source.get("MachineClass", "m1-large")?.spec as { cpuCores: number }).cpuCores === 40 &&
          source.get("MachineClass", "m2-new") &&
          !source.get("MachineClass", "doomed")
            ? true
            : undefined,
        30_000,
        "the watch to resume and deliver what happened meanwhile",
      );
      await new Promise((r) => setTimeout(r, 1_000));
      // Only the objects that changed were delivered; the other samples were not replayed as new.
      expect(new Set(seen)).toEqual(
        new Set(["MachineClass/m1-large", "MachineClass/m2-new", "MachineClass/doomed"]),
      );
    } finally {
      await source.stop();
      await relay.close();
    }
  });
});
