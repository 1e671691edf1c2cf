// The GitOps examples under docs/gitops/, judged by the real tools: gitops-health
// (hack/health.sh) runs kstatus, the library Flux's health checks use, and Argo CD's health Lua
// in gopher-lua inside Argo CD v3.6's health flow, here on statuses built with the controller's
// own conditionsFor (hack/gitops-health.int.test.ts does the same on objects the controller wrote
// on the test API server). Also: the argocd-cm patch carries health.lua for every kind, and the
// Argo CD Application and Flux Kustomizations point where they should.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load, loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { conditionsFor, type Summary } from "../controllers/common/status.js";
import { API_VERSION, GROUP, KINDS } from "../crds/index.js";
import { readPlatformDirectory } from "../src/platform-config/index.js";
import {
  gitopsHealth,
  type HealthRow,
  installHealthTool,
  type Verdict,
} from "../test/support/health.js";

const root = join(import.meta.dirname, "..");
const argocdDir = join(root, "docs/gitops/argocd");
const HEALTH_LUA = readFileSync(join(argocdDir, "health.lua"), "utf8");
const FINALIZER = "platform.dataverket.io/in-use";
const healthKey = (kind: string): string => `resource.customizations.health.${GROUP}_${kind}`;

type Obj = Record<string, unknown>;

function yamlFile(path: string): Obj {
  return load(readFileSync(join(root, path), "utf8")) as Obj;
}

function yamlDocuments(path: string): Obj[] {
  return (loadAll(readFileSync(join(root, path), "utf8")) as (Obj | null)[]).filter(
    (d): d is Obj => d !== null,
  );
}

let tool = "";
let scratch = "";

beforeAll(async () => {
  // A first run on a machine builds it from the Go module proxy (about half a minute).
  tool = await installHealthTool();
  scratch = mkdtempSync(join(tmpdir(), "dv-gitops-health-"));
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Both tools' verdicts on each object, in order. */
async function health(objects: Obj[], script?: { lua: string }): Promise<HealthRow[]> {
  const rows = await gitopsHealth(tool, { apiVersion: "v1", kind: "List", items: objects }, script);
  expect(rows).toHaveLength(objects.length);
  return rows;
}

// ----------------------------------------------------------------------------------- fixtures

const GENERATION = 4;
const NOW = new Date("2026-01-01T00:00:00Z");

function object(kind: string, status?: Obj, metadata: Obj = {}): Obj {
  return {
    apiVersion: API_VERSION,
    kind,
    metadata: { name: "dc1-tenant", generation: GENERATION, ...metadata },
    spec: {},
    ...(status ? { status } : {}),
  };
}

/** The status the platform controller writes: conditions from the real `conditionsFor`. */
function statusFor(summary: Summary, generation = GENERATION, extra: Obj = {}): Obj {
  return {
    ...extra,
    observedGeneration: generation,
    conditions: conditionsFor(summary, [], generation, NOW),
  };
}

const invalidSpec: Summary = {
  phase: "stalled",
  reason: "InvalidSpec",
  message: "spec.vlanRanges[0].start: start must not be above end",
};
const inUseDeletion: Summary = {
  phase: "reconciling",
  reason: "InUse",
  message: "deletion waits: NetworkPool dc1-tenant is in use by network net-7, network net-9",
};

interface Case {
  readonly name: string;
  readonly status?: Obj;
  readonly metadata?: Obj;
  /** What Argo CD shows. */
  readonly argo: Verdict;
  /** What kstatus says, as Flux reads it. */
  readonly flux: Verdict;
}

const waiting = `waiting for the controller to observe generation ${GENERATION}`;
const behind = (observed: number): string =>
  `NetworkPool generation is ${GENERATION}, but latest observed generation is ${observed}`;
const deleting = { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [FINALIZER] };
const terminating: Verdict = { status: "Terminating", message: "Resource scheduled for deletion" };

const CASES: readonly Case[] = [
  {
    name: "Ready for this generation",
    status: statusFor({ phase: "ready", message: `generation ${GENERATION} is applied` }),
    argo: { status: "Healthy", message: `generation ${GENERATION} is applied` },
    flux: { status: "Current", message: "Resource is Ready" },
  },
  {
    name: "no status yet (the controller has not seen it)",
    argo: { status: "Progressing", message: waiting },
    // kstatus' blind spot, closed by the CRD default of the next case.
    flux: { status: "Current", message: "Resource is current" },
  },
  {
    name: "no status but the CRD default observedGeneration -1",
    status: { observedGeneration: -1 },
    argo: { status: "Progressing", message: waiting },
    flux: { status: "InProgress", message: behind(-1) },
  },
  {
    name: "Ready for an older generation",
    status: statusFor({ phase: "ready", message: "generation 3 is applied" }, 3),
    argo: { status: "Progressing", message: waiting },
    flux: { status: "InProgress", message: behind(3) },
  },
  {
    name: "Reconciling while observedGeneration lags",
    status: statusFor({ phase: "reconciling", reason: "Provisioning", message: "applying" }, 3),
    argo: { status: "Progressing", message: `${waiting} (Provisioning: applying)` },
    flux: { status: "InProgress", message: behind(3) },
  },
  {
    name: "Reconciling=True (a datacenter it names does not exist yet)",
    status: statusFor({
      phase: "reconciling",
      reason: "DependencyMissing",
      message: "Datacenter dc9 not found",
    }),
    argo: { status: "Progressing", message: "Datacenter dc9 not found" },
    flux: { status: "InProgress", message: "Datacenter dc9 not found" },
  },
  {
    name: "Stalled=True InvalidSpec, naming the field",
    status: statusFor(invalidSpec),
    argo: {
      status: "Degraded",
      message: "InvalidSpec: spec.vlanRanges[0].start: start must not be above end",
    },
    flux: { status: "Failed", message: "spec.vlanRanges[0].start: start must not be above end" },
  },
  {
    name: "Stalled=True Overlap",
    status: statusFor({
      phase: "stalled",
      reason: "Overlap",
      message:
        'spec.prefixes[0] 10.64.0.0/12 overlaps NetworkPool "dc1-other" spec.prefixes[0] 10.64.0.0/12',
    }),
    argo: {
      status: "Degraded",
      message:
        'Overlap: spec.prefixes[0] 10.64.0.0/12 overlaps NetworkPool "dc1-other" spec.prefixes[0] 10.64.0.0/12',
    },
    flux: {
      status: "Failed",
      message:
        'spec.prefixes[0] 10.64.0.0/12 overlaps NetworkPool "dc1-other" spec.prefixes[0] 10.64.0.0/12',
    },
  },
  {
    name: "Stalled=True for this generation while observedGeneration lags",
    status: { ...statusFor(invalidSpec), observedGeneration: GENERATION - 1 },
    argo: {
      status: "Degraded",
      message: "InvalidSpec: spec.vlanRanges[0].start: start must not be above end",
    },
    // kstatus looks at observedGeneration first: Flux waits for its timeout.
    flux: { status: "InProgress", message: behind(GENERATION - 1) },
  },
  {
    name: "Stalled=True left over from an older generation",
    status: statusFor(invalidSpec, GENERATION - 1),
    argo: { status: "Progressing", message: waiting },
    flux: { status: "InProgress", message: behind(GENERATION - 1) },
  },
  {
    name: "Ready=False alone, a reason no retry fixes",
    status: {
      observedGeneration: GENERATION,
      conditions: [{ type: "Ready", status: "False", reason: "Overlap", message: "overlaps" }],
    },
    argo: { status: "Degraded", message: "Overlap: overlaps" },
    // kstatus reads Ready when neither Reconciling nor Stalled is there: False is InProgress.
    flux: { status: "InProgress", message: "overlaps" },
  },
  {
    name: "Ready=False alone, any other reason",
    status: {
      observedGeneration: GENERATION,
      conditions: [{ type: "Ready", status: "False", reason: "Syncing", message: "" }],
    },
    argo: { status: "Progressing", message: "Syncing" },
    flux: { status: "InProgress", message: "" },
  },
  {
    name: "Ready=Unknown alone",
    status: {
      observedGeneration: GENERATION,
      conditions: [{ type: "Ready", status: "Unknown", reason: "Syncing", message: "checking" }],
    },
    argo: { status: "Progressing", message: "waiting for the Ready condition" },
    flux: { status: "InProgress", message: "checking" },
  },
  {
    name: "observed, but no Ready condition yet",
    status: { observedGeneration: GENERATION, conditions: [] },
    argo: { status: "Progressing", message: "waiting for the Ready condition" },
    flux: { status: "Current", message: "Resource is current" },
  },
  {
    name: "being deleted, held because the pool is in use",
    status: statusFor(inUseDeletion, GENERATION, { usedBy: ["network net-7", "network net-9"] }),
    metadata: deleting,
    argo: {
      status: "Progressing",
      message: `held by finalizer ${FINALIZER}: ${inUseDeletion.message}`,
    },
    flux: terminating,
  },
  {
    name: "being deleted, Stalled InUse with no message: usedBy names the users",
    status: statusFor({ phase: "stalled", reason: "InUse", message: "" }, GENERATION, {
      usedBy: ["network net-7", "server srv-2"],
    }),
    metadata: deleting,
    argo: {
      status: "Progressing",
      message: `held by finalizer ${FINALIZER}: in use by network net-7, server srv-2`,
    },
    flux: terminating,
  },
  {
    name: "being deleted, the teardown failed",
    status: statusFor({ phase: "stalled", reason: "DeleteFailed", message: "boom" }),
    metadata: deleting,
    argo: { status: "Degraded", message: "deletion stalled: DeleteFailed: boom" },
    flux: terminating,
  },
  {
    name: "being deleted while Reconciling for another reason",
    status: statusFor({ phase: "reconciling", reason: "Provisioning", message: "tearing down" }),
    metadata: deleting,
    argo: { status: "Progressing", message: "being deleted: Provisioning: tearing down" },
    flux: terminating,
  },
  {
    name: "being deleted, nothing holds it",
    status: statusFor({ phase: "ready", message: "generation 4 is applied" }),
    metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" },
    argo: { status: "Progressing", message: "being deleted" },
    flux: terminating,
  },
];

const caseObjects = (kind: string): Obj[] => CASES.map((c) => object(kind, c.status, c.metadata));

// -------------------------------------------------------------------------------------- tests

describe("docs/gitops/argocd/health.lua in Argo CD, and kstatus, on every case", () => {
  let rows: HealthRow[] = [];
  beforeAll(async () => {
    rows = await health(caseObjects("NetworkPool"));
  });

  it.each(CASES.map((c, i) => [c.name, i] as const))("%s", (_name, i) => {
    const c = CASES[i] as Case;
    expect(rows[i]?.argocd, "Argo CD").toEqual(c.argo);
    expect(rows[i]?.kstatus, "kstatus").toEqual(c.flux);
  });

  it("answers only statuses Argo CD knows, never Unknown (a script error), with a message", () => {
    for (const row of rows) {
      expect(["Healthy", "Progressing", "Degraded"]).toContain(row.argocd.status);
      expect(row.argocd.message).not.toBe("");
    }
  });

  it("without deletionMessage, Argo CD would hide why a deletion waits or failed", async () => {
    // The same script without the line that sets deletionMessage: what Argo CD v3.6 makes of it.
    const without = HEALTH_LUA.replace(/^\s*hs\.deletionMessage = message\n/m, "");
    expect(without).not.toBe(HEALTH_LUA);
    const lua = join(scratch, "without-deletion-message.lua");
    writeFileSync(lua, without);
    const held = CASES.filter((c) => c.metadata !== undefined);
    const out = await health(
      held.map((c) => object("NetworkPool", c.status, c.metadata)),
      { lua },
    );
    expect(out.map((r) => r.argocd)).toEqual(
      held.map((c) =>
        (c.metadata?.finalizers as string[] | undefined)?.length
          ? {
              status: "Progressing",
              message: `Pending deletion; blocked by finalizers: ${FINALIZER}`,
            }
          : { status: "Progressing", message: "Pending deletion" },
      ),
    );
  });

  it("does not break on odd but possible objects", async () => {
    const odd: Obj[] = [
      { apiVersion: API_VERSION, kind: "Datacenter", metadata: { name: "dc1" } },
      object("Datacenter", { conditions: [{ type: "Ready", status: "True" }] }),
      object("Datacenter", {}, { deletionTimestamp: "2026-01-01T00:00:00Z" }),
      object("Datacenter", { observedGeneration: GENERATION, conditions: [{ type: "Stalled" }] }),
    ];
    for (const row of await health(odd)) {
      expect(row.argocd.status, row.argocd.message).not.toBe("Unknown");
      expect(row.kstatus.status, row.kstatus.message).not.toBe("Error");
    }
  });

  it("calls no library Argo CD does not open (string, math, a global os)", () => {
    // Strip comments and string literals, then look for what Argo CD's Lua state lacks: a path
    // no case above takes would fail only in a cluster.
    const code = HEALTH_LUA.replace(/--\[\[[\s\S]*?\]\]/g, "")
      .replace(/--[^\n]*/g, "")
      .replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, '""');
    expect(code).not.toMatch(/\b(string|math|io|utf8|debug|coroutine|os)\s*\./);
    expect(code).not.toMatch(/\)\s*:\s*\w+\s*\(/);
  });
});

describe("docs/gitops/argocd/argocd-cm-patch.yaml", () => {
  const patch = yamlFile("docs/gitops/argocd/argocd-cm-patch.yaml");
  const data = (patch.data ?? {}) as Record<string, unknown>;

  it("patches Argo CD's argocd-cm", () => {
    expect(patch).toMatchObject({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "argocd-cm", namespace: "argocd" },
    });
  });

  it("has a health check for each of our kinds, and nothing else", () => {
    expect(Object.keys(data).sort()).toEqual(KINDS.map((k) => healthKey(k.kind)).sort());
  });

  it.each(KINDS.map((k) => k.kind))("gives %s the same script as health.lua", (kind) => {
    expect(data[healthKey(kind)]).toBe(HEALTH_LUA);
  });

  it("gives every kind the same verdicts in Argo CD, each read through its own entry", async () => {
    // gitops-health picks the script by group and kind from the patch, as Argo CD does.
    for (const { kind } of KINDS) {
      const rows = await health(caseObjects(kind));
      expect(
        rows.map((r) => r.argocd),
        kind,
      ).toEqual(CASES.map((c) => c.argo));
    }
  });
});

describe("docs/gitops/argocd/application.yaml", () => {
  const app = yamlFile("docs/gitops/argocd/application.yaml");

  it("syncs config/platform automatically, pruning, self-healing, server-side", () => {
    expect(app).toMatchObject({
      apiVersion: "argoproj.io/v1alpha1",
      kind: "Application",
      spec: {
        source: { path: "config/platform" },
        syncPolicy: { automated: { prune: true, selfHeal: true } },
      },
    });
    const spec = app.spec as { syncPolicy: { syncOptions?: string[] } };
    expect(spec.syncPolicy.syncOptions).toContain("ServerSideApply=true");
    expect(existsSync(join(root, "config/platform"))).toBe(true);
  });
});

describe("docs/gitops/flux/kustomization.yaml, and Flux's view of our status", () => {
  const docs = yamlDocuments("docs/gitops/flux/kustomization.yaml");
  const sources = docs.filter((d) => d.kind === "GitRepository");
  const kustomizations = docs.filter((d) => d.kind === "Kustomization");
  const named = (name: string) => kustomizations.find((k) => (k.metadata as Obj).name === name);
  const platform = kustomizations.find((k) => (k.spec as Obj).path === "./config/platform");

  it("has a GitRepository that every Kustomization reads", () => {
    expect(sources).toHaveLength(1);
    const source = sources[0] as Obj;
    expect(source.apiVersion).toBe("source.toolkit.fluxcd.io/v1");
    for (const k of kustomizations) {
      expect(k.apiVersion).toBe("kustomize.toolkit.fluxcd.io/v1");
      expect((k.spec as Obj).sourceRef).toEqual({
        kind: "GitRepository",
        name: (source.metadata as Obj).name,
      });
      expect((k.metadata as Obj).namespace).toBe((source.metadata as Obj).namespace);
    }
  });

  it("applies config/platform with prune, a timeout and health checks, after the operator", () => {
    expect(platform).toBeDefined();
    const spec = (platform as Obj).spec as Obj;
    expect(spec).toMatchObject({ prune: true, wait: true });
    expect(spec.timeout).toMatch(/^\d+[smh]/);
    const dependsOn = spec.dependsOn as { name: string }[];
    expect(dependsOn.length).toBeGreaterThan(0);
    const operator = named(dependsOn[0]?.name ?? "");
    expect(operator?.spec).toMatchObject({ path: "./config/default", prune: true, wait: true });
    for (const path of ["config/default", "config/platform"])
      expect(existsSync(join(root, path)), path).toBe(true);
  });

  it("points at a directory that holds only our kinds, each with an Argo CD health check", async () => {
    const objects = await readPlatformDirectory(join(root, "config/platform"));
    expect(objects.length).toBeGreaterThan(0);
    const ours = KINDS.map((k) => k.kind);
    for (const o of objects) expect(ours).toContain(o.kind);
  });

  it("every status the controller writes reads the same in Argo CD and Flux", async () => {
    // What PlatformReconciler writes: observedGeneration = generation, conditions from a summary.
    const summaries: Summary[] = [
      { phase: "ready", message: "generation 4 is applied" },
      ...["DependencyMissing", "InUse", "Provisioning"].map((reason): Summary => ({
        phase: "reconciling",
        reason,
        message: `waiting: ${reason}`,
      })),
      ...["InvalidSpec", "Overlap", "UnknownKind", "InsufficientCapacity"].map(
        (reason): Summary => ({ phase: "stalled", reason, message: `spec.x: ${reason}` }),
      ),
    ];
    const same: Record<string, string> = {
      Current: "Healthy",
      InProgress: "Progressing",
      Failed: "Degraded",
    };
    const rows = await health(summaries.map((s) => object("NetworkPool", statusFor(s))));
    rows.forEach((row, i) => {
      expect(row.argocd.status, summaries[i]?.phase).toBe(same[row.kstatus.status]);
    });
  });
});
