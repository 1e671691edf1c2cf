// Least privilege of what we ship to Kubernetes. Statically, in the Helm chart (default values, and
// with every optional object on) and the kustomize base config/default: no rule of any Role or
// ClusterRole has a `*` (API groups, resources, verbs, names, URLs), grants escalate, bind or
// impersonate, or touches the RBAC API; no ClusterRole names secrets; every binding binds one of
// our own roles to one of our own service accounts; only the controller's account mounts a token.
// Then on the real kube-apiserver, with the chart's accounts and RBAC applied (under a release
// name of this run's own), its RBAC authoriser refuses the controller's account secrets (in every
// namespace and its own), RBAC writes, escalate, bind, impersonation, pods, tokens, `*`, and
// leases outside its namespace — and allows what it needs (read the platform kinds, write their
// status, events, its own leases). The other components' accounts may do none of that.
import { randomBytes } from "node:crypto";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installHelm, type RenderedObject, renderChart } from "../test/support/helm.js";
import { kubectl, kubectlOk } from "../test/support/kube.js";
import { record } from "./support/report.js";

const SUFFIX = randomBytes(3).toString("hex");
// One namespace for every run, kept: the test API server has no namespace controller to finish
// deleting one. The release name (and so every object's name) is this run's own.
const NAMESPACE = "dv-chaos-security";
const RELEASE = `sec${SUFFIX}`;
const RBAC_KINDS = new Set([
  "ServiceAccount",
  "ClusterRole",
  "ClusterRoleBinding",
  "Role",
  "RoleBinding",
]);

/** The RBAC objects applied to the API server, to delete afterwards. */
let applied = "";

beforeAll(async () => {
  await installHelm();
}, 300_000);

afterAll(async () => {
  if (applied) await kubectlOk(["delete", "--ignore-not-found", "-f", "-"], applied);
});

interface Rule {
  readonly apiGroups?: readonly string[];
  readonly resources?: readonly string[];
  readonly verbs?: readonly string[];
  readonly resourceNames?: readonly string[];
  readonly nonResourceURLs?: readonly string[];
}

interface Binding {
  readonly roleRef?: { readonly kind?: string; readonly name?: string };
  readonly subjects?: readonly { readonly kind?: string; readonly name?: string }[];
}

/** What is wrong with the RBAC of one set of objects (a rendering of the chart, a kustomization). */
function staticViolations(
  source: string,
  objects: readonly RenderedObject[],
): {
  roles: number;
  rules: number;
  violations: string[];
} {
  const violations: string[] = [];
  const roles = objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role");
  const roleNames = new Set(roles.map((r) => `${r.kind}/${r.metadata?.name}`));
  const accounts = objects.filter((o) => o.kind === "ServiceAccount");
  const accountNames = new Set(accounts.map((a) => a.metadata?.name));
  let rules = 0;
  for (const role of roles) {
    const where = `${source} ${role.kind}/${role.metadata?.name}`;
    if (role.aggregationRule !== undefined) violations.push(`${where} aggregates other roles`);
    for (const rule of (role.rules as readonly Rule[] | undefined) ?? []) {
      rules++;
      const fields = [
        rule.apiGroups,
        rule.resources,
        rule.verbs,
        rule.resourceNames,
        rule.nonResourceURLs,
      ];
      if (fields.some((f) => f?.some((v) => v.includes("*"))))
        violations.push(`${where} has a wildcard: ${JSON.stringify(rule)}`);
      const dangerous = (rule.verbs ?? []).filter((v) =>
        ["escalate", "bind", "impersonate"].includes(v),
      );
      if (dangerous.length > 0) violations.push(`${where} grants ${dangerous.join(", ")}`);
      if ((rule.apiGroups ?? []).includes("rbac.authorization.k8s.io"))
        violations.push(`${where} grants access to the RBAC API: ${JSON.stringify(rule)}`);
      if (
        role.kind === "ClusterRole" &&
        (rule.resources ?? []).some((r) => r === "secrets" || r.startsWith("secrets/"))
      )
        violations.push(`${where} grants secrets cluster-wide: ${JSON.stringify(rule)}`);
    }
  }
  for (const binding of objects.filter(
    (o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding",
  ) as (RenderedObject & Binding)[]) {
    const where = `${source} ${binding.kind}/${binding.metadata?.name}`;
    if (!roleNames.has(`${binding.roleRef?.kind}/${binding.roleRef?.name}`))
      violations.push(`${where} binds a role not our own: ${JSON.stringify(binding.roleRef)}`);
    for (const subject of binding.subjects ?? [])
      if (subject.kind !== "ServiceAccount" || !accountNames.has(subject.name))
        violations.push(`${where} binds ${subject.kind}/${subject.name}, not our service account`);
  }
  const bound = new Set(
    objects
      .filter((o) => o.kind === "ClusterRoleBinding" || o.kind === "RoleBinding")
      .flatMap((b) => (b as Binding).subjects ?? [])
      .map((s) => s.name),
  );
  for (const account of accounts)
    if (!bound.has(account.metadata?.name) && account.automountServiceAccountToken !== false)
      violations.push(
        `${source} ServiceAccount/${account.metadata?.name} has no role but mounts a token`,
      );
  return { roles: roles.length, rules, violations };
}

/** One question to the API server's authoriser: may an account do this? */
interface Probe {
  readonly verb: string;
  /** `resource[.group]`, as kubectl names it: `secrets`, `leases.coordination.k8s.io`. */
  readonly resource: string;
  readonly subresource?: string;
  /** Where; absent: in every namespace (or a cluster-scoped resource). */
  readonly namespace?: string;
}

const describeProbe = (p: Probe): string =>
  `${p.verb} ${p.resource}${p.subresource ? `/${p.subresource}` : ""} in ${p.namespace ?? "all namespaces"}`;

/**
 * Asks the API server's authoriser (SubjectAccessReviews, all in one kubectl call) whether each
 * account may do each probe, as a pod of that account would be: the account's user and groups.
 */
async function mayDo(questions: readonly { account: string; probe: Probe }[]): Promise<boolean[]> {
  const reviews = questions.map(({ account, probe }) => {
    const dot = probe.resource.indexOf(".");
    return {
      apiVersion: "authorization.k8s.io/v1",
      kind: "SubjectAccessReview",
      spec: {
        user: `system:serviceaccount:${NAMESPACE}:${account}`,
        groups: [
          "system:serviceaccounts",
          `system:serviceaccounts:${NAMESPACE}`,
          "system:authenticated",
        ],
        resourceAttributes: {
          verb: probe.verb,
          resource: dot < 0 ? probe.resource : probe.resource.slice(0, dot),
          group: dot < 0 ? "" : probe.resource.slice(dot + 1),
          ...(probe.subresource ? { subresource: probe.subresource } : {}),
          ...(probe.namespace ? { namespace: probe.namespace } : {}),
        },
      },
    };
  });
  // One line per review, in order: "true" or "false".
  const out = await kubectlOk(
    ["create", "-o", 'jsonpath={.status.allowed}{"\\n"}', "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: reviews }),
  );
  const answers = out.split("\n").filter(Boolean);
  if (answers.length !== questions.length)
    throw new Error(`${questions.length} access reviews, ${answers.length} answers: ${out}`);
  return answers.map((a) => a === "true");
}

const PLATFORM = "platform.dataverket.io";

/** What no account of ours may do. */
const FORBIDDEN: readonly Probe[] = [
  { verb: "*", resource: "*.*" },
  { verb: "get", resource: "secrets" },
  { verb: "list", resource: "secrets" },
  { verb: "watch", resource: "secrets" },
  { verb: "get", resource: "secrets", namespace: NAMESPACE },
  { verb: "list", resource: "secrets", namespace: NAMESPACE },
  { verb: "create", resource: "secrets", namespace: NAMESPACE },
  { verb: "get", resource: "secrets", namespace: "kube-system" },
  { verb: "create", resource: "clusterroles.rbac.authorization.k8s.io" },
  { verb: "create", resource: "clusterrolebindings.rbac.authorization.k8s.io" },
  { verb: "create", resource: "rolebindings.rbac.authorization.k8s.io", namespace: NAMESPACE },
  { verb: "escalate", resource: "clusterroles.rbac.authorization.k8s.io" },
  { verb: "bind", resource: "clusterroles.rbac.authorization.k8s.io" },
  { verb: "escalate", resource: "roles.rbac.authorization.k8s.io", namespace: NAMESPACE },
  { verb: "bind", resource: "roles.rbac.authorization.k8s.io", namespace: NAMESPACE },
  { verb: "impersonate", resource: "users" },
  { verb: "impersonate", resource: "groups" },
  { verb: "impersonate", resource: "serviceaccounts" },
  { verb: "create", resource: "pods", namespace: NAMESPACE },
  { verb: "create", resource: "pods", subresource: "exec", namespace: NAMESPACE },
  { verb: "create", resource: "serviceaccounts", subresource: "token", namespace: NAMESPACE },
  { verb: "create", resource: "customresourcedefinitions.apiextensions.k8s.io" },
  { verb: "create", resource: `datacenters.${PLATFORM}` },
  { verb: "delete", resource: `serverpools.${PLATFORM}` },
  { verb: "update", resource: "leases.coordination.k8s.io", namespace: "kube-system" },
  { verb: "update", resource: "leases.coordination.k8s.io", namespace: "default" },
];

/** What the controller needs (and the other components do not get). */
const CONTROLLER_NEEDS: readonly Probe[] = [
  { verb: "list", resource: `datacenters.${PLATFORM}` },
  { verb: "watch", resource: `serverpools.${PLATFORM}` },
  { verb: "patch", resource: `networkpools.${PLATFORM}` },
  { verb: "update", resource: `machineclasses.${PLATFORM}`, subresource: "status" },
  { verb: "update", resource: `recoverypolicies.${PLATFORM}`, subresource: "finalizers" },
  { verb: "create", resource: "events", namespace: NAMESPACE },
  { verb: "create", resource: "events.events.k8s.io", namespace: "default" },
  { verb: "update", resource: "leases.coordination.k8s.io", namespace: NAMESPACE },
];

describe("the ClusterRole and Roles we ship", () => {
  it("have no wildcards, no secrets cluster-wide, no escalate/bind/impersonate, on paper and on the API server", async () => {
    const violations: string[] = [];
    const controls: string[] = [];
    let roles = 0;
    let rules = 0;

    // ---- statically: every rendering of the chart, and the kustomize base
    const defaults = await renderChart({ release: RELEASE, namespace: NAMESPACE });
    const everything = await renderChart({
      release: RELEASE,
      namespace: NAMESPACE,
      set: {
        "monitoring.serviceMonitor.enabled": "true",
        "monitoring.prometheusRule.enabled": "true",
        "monitoring.grafanaDashboard.enabled": "true",
      },
    });
    const kustomized = (
      loadAll(await kubectlOk(["kustomize", "config/default"])) as (RenderedObject | null)[]
    ).filter((o): o is RenderedObject => o !== null);
    for (const [source, objects] of [
      ["helm (defaults)", defaults.objects],
      ["helm (monitoring on)", everything.objects],
      ["config/default", kustomized],
    ] as const) {
      const found = staticViolations(source, objects);
      roles += found.roles;
      rules += found.rules;
      violations.push(...found.violations);
      // A ClusterRole and the leader-election Role in each; a source that rendered none proves nothing.
      if (found.roles < 2 || found.rules < 5) controls.push(`${source}: only ${found.roles} roles`);
    }

    // ---- on the API server: the chart's accounts and RBAC, applied under this run's release name
    const rbac = defaults.objects.filter((o) => RBAC_KINDS.has(o.kind ?? ""));
    const controllerAccount = rbac
      .filter((o) => o.kind === "ClusterRoleBinding")
      .flatMap((b) => (b as Binding).subjects ?? [])[0]?.name;
    const otherAccounts = rbac
      .filter((o) => o.kind === "ServiceAccount" && o.metadata?.name !== controllerAccount)
      .map((o) => o.metadata?.name ?? "");
    if (controllerAccount === undefined || otherAccounts.length === 0)
      controls.push(`accounts: controller ${controllerAccount}, others ${otherAccounts.join(",")}`);
    const created = await kubectl(["create", "namespace", NAMESPACE]);
    if (created.code !== 0 && !created.stderr.includes("AlreadyExists"))
      throw new Error(`kubectl create namespace ${NAMESPACE}: ${created.stderr}`);
    applied = rbac.map((o) => JSON.stringify(o)).join("\n---\n");
    await kubectlOk(["apply", "-n", NAMESPACE, "-f", "-"], applied);

    const questions = [controllerAccount ?? "", ...otherAccounts].flatMap((account) =>
      [...FORBIDDEN, ...CONTROLLER_NEEDS].map((probe) => ({ account, probe })),
    );
    const answers = await mayDo(questions);
    let probes = 0;
    questions.forEach(({ account, probe }, i) => {
      const may = answers[i] === true;
      const needed = CONTROLLER_NEEDS.includes(probe) && account === controllerAccount;
      if (needed) {
        if (!may) controls.push(`the controller may not ${describeProbe(probe)}`);
        return;
      }
      probes++;
      if (may) violations.push(`${account} may ${describeProbe(probe)}`);
    });

    record({
      scenario: "security-cluster-role",
      faults: probes,
      operations: probes + rules + CONTROLLER_NEEDS.length,
      lost: 0,
      duplicated: 0,
      violations: violations.length,
      figures: { roles, rules, accounts: otherAccounts.length + 1, probes },
    });
    expect(violations).toEqual([]);
    expect(controls).toEqual([]);
  });
});
