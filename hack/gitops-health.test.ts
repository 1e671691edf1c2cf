// The GitOps examples under docs/gitops/: the Argo CD health script run for real in a Lua VM
// (fengari) against the status our controllers write, the argocd-cm patch checked to carry that
// same script for every kind, and the Flux side checked against kstatus, the library Flux's
// health checks use.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fengari, { type LuaState } from "fengari";
import { load, loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { conditionsFor, type Summary } from "../controllers/common/status.js";
import { API_VERSION, GROUP, KINDS } from "../crds/index.js";
import { readPlatformDirectory } from "../src/platform-config/index.js";

const { lua, lauxlib, lualib, to_luastring } = fengari;

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

// ------------------------------------------------------------------------------ Lua in fengari

/** Pushes a JSON value as Argo CD's decodeValue does: objects and arrays become tables. */
function push(L: LuaState, value: unknown): void {
  if (value === null || value === undefined) lua.lua_pushnil(L);
  else if (typeof value === "boolean") lua.lua_pushboolean(L, value);
  else if (typeof value === "number") {
    // Integers as integers, so tostring(3) is "3" as in gopher-lua (fengari's are 32-bit).
    if ((value | 0) === value) lua.lua_pushinteger(L, value);
    else lua.lua_pushnumber(L, value);
  } else if (typeof value === "string") lua.lua_pushstring(L, to_luastring(value));
  else if (Array.isArray(value)) {
    lua.lua_createtable(L, value.length, 0);
    value.forEach((item, i) => {
      push(L, item);
      lua.lua_rawseti(L, -2, i + 1);
    });
  } else if (typeof value === "object") {
    const entries = Object.entries(value as Obj).filter(([, v]) => v !== undefined);
    lua.lua_createtable(L, 0, entries.length);
    for (const [key, item] of entries) {
      push(L, item);
      lua.lua_setfield(L, -2, to_luastring(key));
    }
  } else throw new TypeError(`cannot pass a ${typeof value} to Lua`);
}

/** Argo CD opens these libraries for health scripts, and of os only time and date. */
const SANDBOX = "os = { time = os.time, date = os.date }";

function openSandbox(L: LuaState): void {
  const libs: [string, (L: LuaState) => number][] = [
    ["_G", lualib.luaopen_base],
    [lualib.LUA_LOADLIBNAME, lualib.luaopen_package],
    [lualib.LUA_TABLIBNAME, lualib.luaopen_table],
    [lualib.LUA_OSLIBNAME, lualib.luaopen_os],
  ];
  for (const [name, open] of libs) {
    lauxlib.luaL_requiref(L, to_luastring(name), open, 1);
    lua.lua_pop(L, 1);
  }
  if (lauxlib.luaL_loadstring(L, to_luastring(SANDBOX)) !== lua.LUA_OK)
    throw new Error(lua.lua_tojsstring(L, -1));
  if (lua.lua_pcall(L, 0, 0, 0) !== lua.LUA_OK) throw new Error(lua.lua_tojsstring(L, -1));
}

interface Health {
  readonly status: string;
  readonly message: string;
}

/** Runs a health script the way Argo CD does: `obj` set as a global, the chunk returns `hs`. */
function runHealth(script: string, obj: Obj): Health {
  const L = lauxlib.luaL_newstate();
  try {
    openSandbox(L);
    push(L, obj);
    lua.lua_setglobal(L, to_luastring("obj"));
    if (lauxlib.luaL_loadstring(L, to_luastring(script)) !== lua.LUA_OK)
      throw new Error(`does not compile: ${lua.lua_tojsstring(L, -1)}`);
    if (lua.lua_pcall(L, 0, 1, 0) !== lua.LUA_OK)
      throw new Error(`failed: ${lua.lua_tojsstring(L, -1)}`);
    if (lua.lua_type(L, -1) !== lua.LUA_TTABLE) throw new Error("did not return a table");
    const field = (name: string): string => {
      const type = lua.lua_getfield(L, -1, to_luastring(name));
      const value = type === lua.LUA_TSTRING ? lua.lua_tojsstring(L, -1) : `<${type}>`;
      lua.lua_pop(L, 1);
      return value;
    };
    return { status: field("status"), message: field("message") };
  } finally {
    lua.lua_close(L);
  }
}

// ---------------------------------------------------------------------- kstatus, as Flux uses it

type KStatus = "InProgress" | "Failed" | "Current" | "Terminating";

/**
 * kstatus' `Compute` for a kind it has no built-in rules for (sigs.k8s.io/cli-utils,
 * pkg/kstatus/status: checkGenericProperties, checkGeneration, then "current"), which is what
 * Flux's `wait`/`healthChecks` read for our kinds.
 */
function kstatus(o: Obj): KStatus {
  const metadata = (o.metadata ?? {}) as Obj;
  const status = (o.status ?? {}) as Obj;
  if (typeof metadata.deletionTimestamp === "string" && metadata.deletionTimestamp !== "")
    return "Terminating";
  if (
    typeof metadata.generation === "number" &&
    typeof status.observedGeneration === "number" &&
    status.observedGeneration !== metadata.generation
  )
    return "InProgress";
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Obj[]) : [];
  for (const c of conditions) {
    if (c.type === "Reconciling" && c.status === "True") return "InProgress";
    if (c.type === "Stalled" && c.status === "True") return "Failed";
  }
  return "Current";
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
  message: "spec.vlanRanges.0.start: start must not be above end",
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
  readonly argo: Health;
  readonly flux: KStatus;
}

const waiting = `waiting for the controller to observe generation ${GENERATION}`;

const CASES: readonly Case[] = [
  {
    name: "Ready for this generation",
    status: statusFor({ phase: "ready", message: `generation ${GENERATION} is applied` }),
    argo: { status: "Healthy", message: `generation ${GENERATION} is applied` },
    flux: "Current",
  },
  {
    name: "no status yet (the controller has not seen it)",
    argo: { status: "Progressing", message: waiting },
    flux: "Current", // kstatus' blind spot: see the CRD default case below
  },
  {
    name: "no status but the CRD default observedGeneration -1",
    status: { observedGeneration: -1 },
    argo: { status: "Progressing", message: waiting },
    flux: "InProgress",
  },
  {
    name: "Ready for an older generation",
    status: statusFor({ phase: "ready", message: "generation 3 is applied" }, 3),
    argo: { status: "Progressing", message: waiting },
    flux: "InProgress",
  },
  {
    name: "Reconciling while observedGeneration lags",
    status: statusFor({ phase: "reconciling", reason: "Provisioning", message: "applying" }, 3),
    argo: { status: "Progressing", message: `${waiting} (Provisioning: applying)` },
    flux: "InProgress",
  },
  {
    name: "Reconciling=True (a datacenter it names does not exist yet)",
    status: statusFor({
      phase: "reconciling",
      reason: "DependencyMissing",
      message: "Datacenter dc9 not found",
    }),
    argo: { status: "Progressing", message: "Datacenter dc9 not found" },
    flux: "InProgress",
  },
  {
    name: "Stalled=True InvalidSpec, naming the field",
    status: statusFor(invalidSpec),
    argo: {
      status: "Degraded",
      message: "InvalidSpec: spec.vlanRanges.0.start: start must not be above end",
    },
    flux: "Failed",
  },
  {
    name: "Stalled=True Overlap",
    status: statusFor({
      phase: "stalled",
      reason: "Overlap",
      message: "spec.prefixes.0: 10.64.0.0/12 overlaps NetworkPool dc1-other",
    }),
    argo: {
      status: "Degraded",
      message: "Overlap: spec.prefixes.0: 10.64.0.0/12 overlaps NetworkPool dc1-other",
    },
    flux: "Failed",
  },
  {
    name: "Stalled=True for this generation while observedGeneration lags",
    status: { ...statusFor(invalidSpec), observedGeneration: GENERATION - 1 },
    argo: {
      status: "Degraded",
      message: "InvalidSpec: spec.vlanRanges.0.start: start must not be above end",
    },
    flux: "InProgress", // kstatus looks at observedGeneration first: Flux waits for its timeout
  },
  {
    name: "Stalled=True left over from an older generation",
    status: statusFor(invalidSpec, GENERATION - 1),
    argo: { status: "Progressing", message: waiting },
    flux: "InProgress",
  },
  {
    name: "Ready=False alone, a reason no retry fixes",
    status: {
      observedGeneration: GENERATION,
      conditions: [{ type: "Ready", status: "False", reason: "Overlap", message: "overlaps" }],
    },
    argo: { status: "Degraded", message: "Overlap: overlaps" },
    flux: "Current", // our controllers never write this: see "every status the controller writes"
  },
  {
    name: "Ready=False alone, any other reason",
    status: {
      observedGeneration: GENERATION,
      conditions: [{ type: "Ready", status: "False", reason: "Syncing", message: "" }],
    },
    argo: { status: "Progressing", message: "Syncing" },
    flux: "Current",
  },
  {
    name: "observed, but no Ready condition yet",
    status: { observedGeneration: GENERATION, conditions: [] },
    argo: { status: "Progressing", message: "waiting for the Ready condition" },
    flux: "Current",
  },
  {
    name: "being deleted, held because the pool is in use",
    status: statusFor(inUseDeletion, GENERATION, { usedBy: ["network net-7", "network net-9"] }),
    metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [FINALIZER] },
    argo: {
      status: "Progressing",
      message: `held by finalizer ${FINALIZER}: ${inUseDeletion.message}`,
    },
    flux: "Terminating",
  },
  {
    name: "being deleted, Stalled InUse with no message: usedBy names the users",
    status: statusFor({ phase: "stalled", reason: "InUse", message: "" }, GENERATION, {
      usedBy: ["network net-7", "server srv-2"],
    }),
    metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [FINALIZER] },
    argo: {
      status: "Progressing",
      message: `held by finalizer ${FINALIZER}: in use by network net-7, server srv-2`,
    },
    flux: "Terminating",
  },
  {
    name: "being deleted, the teardown failed",
    status: statusFor({ phase: "stalled", reason: "DeleteFailed", message: "boom" }),
    metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" },
    argo: { status: "Degraded", message: "deletion stalled: DeleteFailed: boom" },
    flux: "Terminating",
  },
  {
    name: "being deleted, nothing holds it",
    status: statusFor({ phase: "ready", message: "generation 4 is applied" }),
    metadata: { deletionTimestamp: "2026-01-01T00:00:00Z" },
    argo: { status: "Progressing", message: "being deleted" },
    flux: "Terminating",
  },
];

// -------------------------------------------------------------------------------------- tests

describe("docs/gitops/argocd/health.lua", () => {
  it.each(CASES)("$name → $argo.status", ({ status, metadata, argo }) => {
    expect(runHealth(HEALTH_LUA, object("NetworkPool", status, metadata))).toEqual(argo);
  });

  it("answers only statuses Argo CD knows, with a message, for every case", () => {
    const known = ["Healthy", "Progressing", "Degraded", "Suspended", "Missing"];
    for (const c of CASES) {
      const health = runHealth(HEALTH_LUA, object("ServerPool", c.status, c.metadata));
      expect(known).toContain(health.status);
      expect(health.message).not.toBe("");
    }
  });

  it("does not break on odd but possible objects", () => {
    const odd: Obj[] = [
      { apiVersion: API_VERSION, kind: "Datacenter", metadata: { name: "dc1" } },
      object("Datacenter", { conditions: [{ type: "Ready", status: "True" }] }),
      object("Datacenter", {}, { deletionTimestamp: "2026-01-01T00:00:00Z" }),
      object("Datacenter", { observedGeneration: GENERATION, conditions: [{ type: "Stalled" }] }),
    ];
    for (const o of odd) expect(() => runHealth(HEALTH_LUA, o)).not.toThrow();
  });

  it("uses only Lua 5.1 syntax and the libraries Argo CD opens", () => {
    // Strip comments and string literals, then look for what Lua 5.1 (gopher-lua) lacks.
    const code = HEALTH_LUA.replace(/--\[\[[\s\S]*?\]\]/g, "")
      .replace(/--[^\n]*/g, "")
      .replace(/"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'/g, '""');
    expect(code).not.toMatch(/\/\/|::|<<|>>|&|\||~(?!=)|\bgoto\b/);
    expect(code).not.toMatch(/\b(string|math|io|utf8|debug|coroutine|require)\b/);
    expect(code).not.toMatch(/\bos\.(?!time\b|date\b)/);
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

  it.each(KINDS.map((k) => k.kind))("runs %s's copy with the same verdicts", (kind) => {
    const script = String(data[healthKey(kind)]);
    for (const c of CASES)
      expect(runHealth(script, object(kind, c.status, c.metadata)), c.name).toEqual(c.argo);
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

  it.each(CASES)("$name: kstatus says $flux", ({ status, metadata, flux }) => {
    expect(kstatus(object("NetworkPool", status, metadata))).toBe(flux);
  });

  it("every status the controller writes reads the same in Argo CD and Flux", () => {
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
    const same: Record<KStatus, string> = {
      Current: "Healthy",
      InProgress: "Progressing",
      Failed: "Degraded",
      Terminating: "Progressing",
    };
    for (const summary of summaries) {
      const o = object("NetworkPool", statusFor(summary));
      const conditions = (o.status as { conditions: Obj[] }).conditions;
      // Ready=False never comes alone: kstatus (which ignores Ready) sees Reconciling or Stalled.
      if (summary.phase !== "ready")
        expect(conditions.map((c) => c.type)).toContain(
          summary.phase === "stalled" ? "Stalled" : "Reconciling",
        );
      expect(runHealth(HEALTH_LUA, o).status, summary.phase).toBe(same[kstatus(o)]);
    }
  });
});
