// The shipping artefacts against the real test API server: the Helm chart lints and everything it
// renders is accepted by `kubectl apply --dry-run=server`; so are the kustomize bases.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { loadAll } from "js-yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { kubectl, kubectlOk } from "../support/kube.js";

const run = promisify(execFile);
const NAMESPACE = "dataverket-system";

async function helm(args: readonly string[]): Promise<string> {
  const { stdout } = await run("bash", ["hack/helm.sh", "helm", ...args], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

beforeAll(async () => {
  await run("bash", ["hack/helm.sh", "install"], { timeout: 300_000 });
  await kubectl(["create", "namespace", NAMESPACE]);
}, 300_000);

describe("the Helm chart", () => {
  it("passes helm lint --strict", async () => {
    const out = await helm(["lint", "--strict", "charts/dataverket"]);
    expect(out).toContain("1 chart(s) linted, 0 chart(s) failed");
    expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it("renders objects the API server accepts (dry run on the server)", async () => {
    const rendered = await helm(["template", "dv", "charts/dataverket", "-n", NAMESPACE]);
    const out = await kubectlOk(
      ["apply", "--dry-run=server", "-n", NAMESPACE, "-f", "-"],
      rendered,
    );
    const kinds = new Set(
      out
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split("/")[0]),
    );
    for (const kind of [
      "deployment.apps",
      "serviceaccount",
      "service",
      "poddisruptionbudget.policy",
      "networkpolicy.networking.k8s.io",
      "clusterrole.rbac.authorization.k8s.io",
      "role.rbac.authorization.k8s.io",
    ])
      expect(kinds, out).toContain(kind);
    // One Deployment per component: the API, the controller and the four domain workers.
    expect(out.match(/^deployment\.apps\//gm)).toHaveLength(6);
  });

  it("grants least privilege: no wildcards, and no secrets cluster-wide", async () => {
    const rendered = await helm(["template", "dv", "charts/dataverket", "-n", NAMESPACE]);
    const json = await kubectlOk(
      ["apply", "--dry-run=client", "-n", NAMESPACE, "-o", "json", "-f", "-"],
      rendered,
    );
    const items = (JSON.parse(json) as { items: { kind: string; rules?: unknown[] }[] }).items;
    const roles = items.filter((i) => i.kind === "ClusterRole" || i.kind === "Role");
    expect(roles.length).toBeGreaterThan(0);
    const rules = JSON.stringify(roles.map((r) => r.rules));
    expect(rules).not.toContain('"*"');
    const clusterRules = JSON.stringify(
      roles.filter((r) => r.kind === "ClusterRole").map((r) => r.rules),
    );
    expect(clusterRules).not.toContain('"secrets"');
  });
});

describe("the alerts and the dashboard", () => {
  it("alert on what matters, using only metrics docs/metrics.md lists (and /metrics serves)", async () => {
    const rendered = await helm([
      "template",
      "dv",
      "charts/dataverket",
      "-n",
      NAMESPACE,
      "--set",
      "monitoring.prometheusRule.enabled=true",
      "--set",
      "monitoring.grafanaDashboard.enabled=true",
    ]);
    const docs = loadAll(rendered) as {
      kind?: string;
      spec?: { groups: { rules: { alert: string; expr: string }[] }[] };
      data?: Record<string, string>;
    }[];
    const documented = new Set(
      [...readFileSync("docs/metrics.md", "utf8").matchAll(/^\| `(dataverket_[a-z_]+)`/gm)].map(
        (m) => m[1],
      ),
    );
    const used = (expr: string) =>
      [...expr.matchAll(/dataverket_[a-z_]+/g)].map((m) =>
        m[0].replace(/_(count|bucket|sum)$/, ""),
      );

    const rule = docs.find((d) => d?.kind === "PrometheusRule");
    const rules = rule?.spec?.groups.flatMap((g) => g.rules) ?? [];
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        "DataverketDeadLettersGrowing",
        "DataverketTaskStuck",
        "DataverketShardUnheld",
        "DataverketOutboxBacklogOld",
        "DataverketApiErrorRatio",
        "DataverketBackupStale",
      ]),
    );
    for (const r of rules) {
      expect(used(r.expr).length, r.alert).toBeGreaterThan(0);
      for (const metric of used(r.expr))
        expect(documented, `${r.alert}: ${metric}`).toContain(metric);
    }

    const dashboardMap = docs.find((d) => d?.kind === "ConfigMap" && d.data?.["dataverket.json"]);
    const dashboard = JSON.parse(dashboardMap?.data?.["dataverket.json"] ?? "{}") as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dashboard.panels.length).toBeGreaterThanOrEqual(10);
    for (const p of dashboard.panels)
      for (const t of p.targets)
        for (const metric of used(t.expr))
          expect(documented, `${p.title}: ${metric}`).toContain(metric);
  });
});

describe("the kustomize bases", () => {
  it("config/default is accepted by the API server", async () => {
    const out = await kubectlOk(["apply", "--dry-run=server", "-k", "config/default"]);
    expect(out).toContain("deployment.apps/");
    expect(out).toContain("customresourcedefinition.apiextensions.k8s.io/networkpools");
  });
});
