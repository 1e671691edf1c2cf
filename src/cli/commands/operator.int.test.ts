// docs/operator-guide.md, step by step, with `dv` alone against `npm run dev`: the context dv dev
// writes, create a tenant, project, environment and network, watch the task to its end, break
// the nett worker, find the dead letter, replay it, and tear down. Output formats must parse and
// exit codes must match the documented ones.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../../test/support/backbone.js";
import { DV_BIN, type DvProcess, runDv, startDv } from "../../../test/support/process.js";
import { freePort } from "../../dev/index.js";

let dev: DvProcess;
let env: Record<string, string>;
let cliConfig: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "dv-operator-"));
  cliConfig = join(dir, "home", ".config", "dataverket", "config.yaml");
  const natsPort = await freePort();
  const devEnv = {
    DV_HTTP_PORT: String(await freePort()),
    DV_NATS_PORT: String(natsPort),
    DV_PGLITE_DIR: join(dir, "pglite"),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "warn",
    DV_CLI_CONFIG: cliConfig,
  };
  dev = startDv(["dev"], devEnv);
  await dev.waitFor(/context "dev" saved in \S+ \(current\)/, 90_000);
  // What a user's shell has: no DV_SERVER, no DV_TOKEN, no NATS_URL; only the context file, in
  // which `dv dev` recorded its API, its token and this private nats-server's URL (for `dv sim`).
  env = { DV_CLI_CONFIG: cliConfig };
  expect(readFileSync(cliConfig, "utf8")).toContain(`nats://127.0.0.1:${natsPort}`);
}, 120_000);

afterAll(async () => {
  if (dev.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
});

const dv = (...args: string[]) => runDv(args, env);

interface Listed {
  items: {
    metadata: { name: string; generation: number };
    status: { observedGeneration: number; conditions: { type: string; status: string }[] };
  }[];
}

/** docs/operator-guide.md, sections 4 and 5: apply, patch, label, edit, then the audit trail. */
async function changeItAndReadTheAuditTrail(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "dv-apply-"));
  const shop = join(dir, "shop.yaml");
  writeFileSync(
    shop,
    `kind: Network
metadata:
  name: web
  labels:
    team: payments
spec:
  prefixLength: 26
---
kind: Network
metadata:
  name: cache
spec:
  prefixLength: 28
`,
  );
  // The API checks each change and keeps nothing.
  const dry = await dv("apply", "-f", shop, "--dry-run=server");
  expect(dry).toMatchObject({
    code: 0,
    stdout: "network/web configured (server dry run)\nnetwork/cache created (server dry run)\n",
  });
  expect((await dv("get", "network", "cache")).code).toBe(4);
  const applied = await dv("apply", "-f", shop, "--wait");
  expect(applied.code, applied.stderr).toBe(0);
  expect(applied.stdout).toMatch(
    /^network\/web configured \(task \S+\)\nnetwork\/cache created \(task \S+\)\n/,
  );
  expect(applied.stdout).toMatch(/succeeded \(network\.create\)\n$/);
  expect((await dv("apply", "-f", shop)).stdout).toBe(
    "network/web unchanged\nnetwork/cache unchanged\n",
  );

  // A directory in name order; a bad document is one line, the others are still applied.
  const manifests = join(dir, "manifests");
  mkdirSync(manifests);
  writeFileSync(join(manifests, "00-shop.yaml"), readFileSync(shop));
  writeFileSync(
    join(manifests, "10-db.yaml"),
    "kind: Network\nmetadata:\n  name: db\nspec:\n  prefixLength: 99\n",
  );
  const bad = await dv("apply", "-f", manifests);
  expect(bad.code).toBe(2);
  expect(bad.stdout).toBe("network/web unchanged\nnetwork/cache unchanged\n");
  expect(bad.stderr).toMatch(
    /^dv: error: \S+\/10-db\.yaml#1 network\/db: spec\.prefixLength: .*29\n$/,
  );

  // From here a watch prints the list again only when something it shows changes.
  const watch = startDv(["get", "networks", "--watch"], env);
  await watch.waitFor(/^web\s+True\s+Ready\s+1\/1/m);

  const patched = await dv(
    "patch",
    "network",
    "web",
    "-p",
    '{"spec":{"prefixLength":25}}',
    "--wait",
  );
  expect(patched.code, patched.stderr).toBe(0);
  expect(patched.stdout).toMatch(/^network\/web patched \(task \S+\)$/m);
  expect(patched.stdout).toMatch(/succeeded \(network\.update\)\n$/);

  expect((await dv("label", "network", "web", "tier=frontend")).stdout).toMatch(
    /^network\/web labeled \(task \S+\)\n$/,
  );
  const taken = await dv("label", "network", "web", "tier=backend");
  expect(taken.code).toBe(2);
  expect(taken.stderr).toBe(
    'dv: error: label "tier" already has the value "frontend": pass --overwrite to change it\n',
  );
  expect((await dv("label", "network", "web", "tier=backend", "--overwrite")).code).toBe(0);
  expect((await dv("label", "network", "web", "tier-")).code).toBe(0);
  const labels = async () =>
    JSON.parse((await dv("get", "network", "web", "-o", "json")).stdout) as {
      metadata: { labels: Record<string, string> };
      spec: { prefixLength: number };
    };
  expect(await labels()).toMatchObject({
    metadata: { labels: { team: "payments" } },
    spec: { prefixLength: 25 },
  });

  // dv edit, with an "editor" that changes the file as a person would.
  const editor = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  const edit = (script: string) => runDv(["edit", "network", "web"], { ...env, EDITOR: script });
  const edited = await edit(
    editor("checkout.sh", `sed -i 's/^    team: payments$/    team: checkout/' "$1"`),
  );
  expect(edited.code, edited.stderr).toBe(0);
  expect(edited.stdout).toMatch(/^network\/web edited \(task \S+\)\n$/);
  expect((await labels()).metadata.labels).toEqual({ team: "checkout" });
  const untouched = await edit(editor("nothing.sh", "true"));
  expect(untouched).toMatchObject({ code: 0, stdout: "Edit cancelled, no changes made.\n" });
  // Someone else changes the network while the file is open: refused, and the edit is kept.
  const raced = await edit(
    editor(
      "raced.sh",
      `"${process.execPath}" "${DV_BIN}" label network web concurrent=yes >/dev/null && sed -i 's/^    team: checkout$/    team: mine/' "$1"`,
    ),
  );
  expect(raced.code).toBe(5);
  expect(raced.stderr.trim().split("\n")).toHaveLength(1);
  const kept = /your edit is kept in (\S+)$/.exec(raced.stderr.trim())?.[1] ?? "";
  expect(existsSync(kept)).toBe(true);
  expect(readFileSync(kept, "utf8")).toMatch(/^ {4}team: mine$/m);
  expect((await labels()).metadata.labels).toEqual({ team: "checkout", concurrent: "yes" });

  await watch.waitFor(/^web\s+True\s+Ready\s+2\/2/m);
  watch.child.kill("SIGINT");
  await watch.exited;
  // Each list printed differs from the one before in more than its AGE column: the labels
  // changed five times without showing in it, so were it printed on every poll, or on every
  // change of the objects, two in a row would be alike.
  const lists = watch
    .stdout()
    .split(/\n(?=NAME\s)/)
    .map((list) => list.replace(/\s+\d+[smhd]$/gm, "").trim());
  expect(lists.length).toBeGreaterThanOrEqual(2);
  for (let i = 1; i < lists.length; i++) expect(lists[i]).not.toBe(lists[i - 1]);

  // The audit trail: who changed web, and what.
  const trail = await dv("audit", "--resource", "network/web");
  expect(trail.code, trail.stderr).toBe(0);
  expect(trail.stdout.split("\n")[0]).toMatch(/^TIME\s+ACTOR\s+ACTION\s+RESOURCE\s+CHANGE$/);
  expect(trail.stdout).toMatch(
    /^\S+Z\s+operator:dev-operator\s+network\.create\s+network\/web\s+/m,
  );
  expect(trail.stdout).toMatch(/\snetwork\.update\s+network\/web\s+spec\.prefixLength: 26→25$/m);
  expect(trail.stdout).toMatch(
    /\snetwork\.update\s+network\/web\s+labels\.team: "payments"→"checkout"$/m,
  );
  const asYaml = load(
    (await dv("audit", "--kind", "networks", "--since", "1h", "-o", "yaml")).stdout,
  ) as {
    items: { action: string; resource: { kind: string } }[];
  };
  expect(asYaml.items.length).toBeGreaterThanOrEqual(8);
  expect(new Set(asYaml.items.map((r) => r.resource.kind))).toEqual(new Set(["network"]));
  const platform = JSON.parse(
    (await dv("audit", "-A", "--kind", "tenant", "-o", "json")).stdout,
  ) as {
    items: { action: string }[];
  };
  expect(platform.items.map((r) => r.action)).toEqual(["tenant.create"]);
}

describe("the operator guide, with dv alone", () => {
  it("creates, watches, breaks, replays and deletes, all with dv", async () => {
    // The context npm run dev saved: current, with a token, readable by its owner only.
    const contexts = await dv("config", "get-contexts");
    expect(contexts.code).toBe(0);
    expect(contexts.stdout).toMatch(/^\*\s+dev\s+http:\/\/127\.0\.0\.1:\d+/m);
    expect(statSync(cliConfig).mode & 0o777).toBe(0o600);
    expect((await dv("config", "view")).stdout).toContain("token: REDACTED");

    expect(await dv("create", "tenant", "acme")).toMatchObject({ code: 0 });
    expect(
      (
        await dv(
          "config",
          "set-context",
          "dev",
          "--tenant",
          "acme",
          "--project",
          "shop",
          "--environment",
          "prod",
        )
      ).code,
    ).toBe(0);
    expect((await dv("create", "project", "shop")).code).toBe(0);
    const env1 = await dv("create", "environment", "prod", "--datacenter", "dc1");
    expect(env1.stdout).toMatch(/^environment prod created \(\S+\)\n$/);
    const envs = (await dv("get", "environments")).stdout;
    expect(envs).toMatch(/^NAME\s+DATACENTER\s+ID\s+AGE$/m);
    expect(envs).toMatch(/^prod\s+dc1\s+[0-9a-f-]{36}\s+\d+s$/m);

    // A network, followed to its end: the step log, then success, exit 0.
    const created = await dv("create", "network", "web", "--set", "prefixLength=26", "--wait");
    expect(created.stderr).toMatch(/network web accepted: task \S+/);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^\d\d:\d\d:\d\d {2}created /m);
    expect(created.stdout).toMatch(/^\d\d:\d\d:\d\d {2}queued /m);
    expect(created.stdout).toMatch(/^\d\d:\d\d:\d\d {2}started /m);
    expect(created.stdout).toMatch(/task \S+ succeeded \(network\.create\)\n$/);

    // Every output format parses and says the same.
    const asJson = JSON.parse((await dv("get", "networks", "-o", "json")).stdout) as Listed;
    const asYaml = load((await dv("get", "networks", "-o", "yaml")).stdout) as Listed;
    expect(asYaml).toEqual(asJson);
    const web = asJson.items.find((n) => n.metadata.name === "web");
    expect(web?.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
    expect(web?.status.observedGeneration).toBe(web?.metadata.generation);
    const tableOut = (await dv("get", "networks")).stdout;
    expect(tableOut.split("\n")[0]).toMatch(/^NAME\s+READY\s+STATUS\s+GENERATION\s+AGE$/);
    expect(tableOut).toMatch(/^web\s+True\s+Ready\s+1\/1\s+\d+s$/m);
    expect((await dv("get", "networks", "-o", "wide")).stdout).toContain('"prefixLength":26');
    const described = (await dv("describe", "network", "web")).stdout;
    expect(described).toMatch(/^Name:\s+web$/m);
    expect(described).toMatch(/^ {2}cidr: "10\.\d+\.\d+\.\d+\/26"$/m);
    expect(described).toMatch(/^ {2}Ready\s+True\s+Ready\s+/m);

    await changeItAndReadTheAuditTrail();

    // Break the nett worker on purpose: the next network fails, exit 1, one line saying why.
    expect(
      (await dv("sim", "fault", "set", "--service", "nett", "--all", "--message", "switch offline"))
        .code,
    ).toBe(0);
    const broken = await dv("create", "network", "api", "--wait");
    expect(broken.code).toBe(1);
    const failure = broken.stderr.trim().split("\n").pop() ?? "";
    expect(failure).toMatch(/^dv: error: task (\S+) failed: .*switch offline/);
    const taskId = /task (\S+) failed/.exec(failure)?.[1] ?? "";

    // Find its dead letter, fix the cause, replay it, and follow the same task to success.
    const letters = JSON.parse((await dv("dlq", "list", "-o", "json")).stdout) as {
      items: { id: string; taskId: string }[];
    };
    const letter = letters.items.find((d) => d.taskId === taskId);
    expect(letter).toBeDefined();
    expect((await dv("sim", "fault", "clear", "--service", "nett", "--all")).code).toBe(0);
    expect((await dv("dlq", "replay", letter?.id ?? "", "--reason", "switch is back")).code).toBe(
      0,
    );
    const watched = await dv("tasks", "watch", taskId);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/succeeded \(network\.create\)\n$/);
    // Every task succeeded, newest first: the replayed one was created last.
    const tasks = load((await dv("tasks", "list", "-o", "yaml")).stdout) as {
      items: { id: string; state: string; createdAt: string }[];
    };
    expect(tasks.items[0]?.id).toBe(taskId);
    const times = tasks.items.map((t) => t.createdAt);
    expect(times).toEqual([...times].sort().reverse());
    expect(new Set(tasks.items.map((t) => t.state))).toEqual(new Set(["succeeded"]));
    await eventually(
      async () =>
        (await dv("get", "network", "api")).stdout.match(/^api\s+True\s+Ready/m) ? true : undefined,
      30_000,
      "network api to be Ready",
    );

    // One replica (dv dev) holds every shard and leads the platform controllers.
    const leases = await dv("leases");
    expect(leases.code).toBe(0);
    expect(leases.stdout).toMatch(/^REPLICA\s+DATACENTER\s+SHARDS\s+PLATFORM LEADER$/m);
    expect(leases.stdout).toMatch(/^\S+-\d+-[0-9a-f]{6}\s+dc1\s+32\s+yes$/m);
    expect(leases.stdout).toMatch(/^32 shards, 0 not held$/m);
    const perShard = JSON.parse((await dv("leases", "-o", "json")).stdout) as {
      leases: { shard: number; live: boolean }[];
    };
    expect(perShard.leases.filter((l) => l.live)).toHaveLength(33);

    // The database, and a backup of it written where the operator stands.
    const dbStatus = await dv("db", "status");
    expect(dbStatus.code).toBe(0);
    expect(dbStatus.stdout).toMatch(
      /^Database:\s+pglite:\S+ \(embedded PGlite \d+\.\d+.*, primary\)$/m,
    );
    expect(dbStatus.stdout).toMatch(/^Last backup:\s+none: take one with dv db backup$/m);
    const here = mkdtempSync(join(tmpdir(), "dv-backup-"));
    const backup = await runDv(["db", "backup"], env, 60_000, { cwd: here });
    expect(backup.code, backup.stderr).toBe(0);
    expect(backup.stdout).toMatch(/^backup \S+ written to \S+\/dataverket-\d{8}T\d{6}Z$/m);
    expect(backup.stdout).toMatch(/^ {2}the whole database: database\.tar\.gz, /m);
    expect((await dv("db", "status")).stdout).toMatch(/^Last backup:\s+\S+ \(\d+s ago\)/m);

    // Tear down: the delete is a task too; afterwards the name is gone (exit 4).
    const deleted = await dv("delete", "network", "web", "--wait");
    expect(deleted.code).toBe(0);
    expect(deleted.stdout).toMatch(/succeeded \(network\.delete\)\n$/);
    const gone = await dv("get", "network", "web");
    expect(gone.code).toBe(4);
    expect(gone.stderr.trim().split("\n")).toHaveLength(1);
  }, 300_000);

  it("reads and sets a tenant's quotas, and a request past one is refused in one line", async () => {
    interface Quotas {
      limits: { quota: string; scope: string; limit: number | null; source: string }[];
      usage: { quota: string; scope: string; used: number }[];
    }
    const read = async () => {
      const got = await dv("quota", "get", "acme", "-o", "json");
      expect(got.code).toBe(0);
      return JSON.parse(got.stdout) as Quotas;
    };
    // The defaults of config/platform/platform-policy.yaml.
    const before = await read();
    expect(before.limits).toContainEqual({
      quota: "addresses",
      scope: "*",
      limit: 16384,
      source: "policy",
    });
    const held = before.usage.find((u) => u.quota === "addresses" && u.scope === "dc1")?.used ?? 0;
    expect(held).toBeGreaterThan(0);

    // No room left for another network in dc1.
    const set = await dv("quota", "set", "acme", "addresses", `dc1=${held}`);
    expect(set.code).toBe(0);
    expect(set.stdout).toMatch(new RegExp(`^addresses\\s+dc1\\s+${held}\\s+tenant$`, "m"));
    const refused = await dv("create", "network", "one-more", "--set", "prefixLength=29");
    expect(refused.code).toBe(5);
    expect(refused.stderr).toContain(
      `quota addresses in dc1 is ${held}: ${held} in use, 8 more requested`,
    );
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);

    expect((await dv("quota", "set", "acme", "addresses", "--default")).code).toBe(0);
    expect((await read()).limits.filter((l) => l.quota === "addresses")).toEqual([
      { quota: "addresses", scope: "*", limit: 16384, source: "policy" },
    ]);
    const bad = await dv("quota", "set", "acme", "addresses", "dc1");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"dc1" is not SCOPE=LIMIT');
  });

  it("says in one line what is missing or wrong, with the documented exit codes", async () => {
    const unknown = await dv("get", "flavours");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe(
      'dv: error: unknown kind "flavours"; one of: tenant, project, environment, network, server, cluster, bucket, datacenter, machineclass, networkpool, serverpool, platformpolicy, recoverypolicy\n',
    );

    const otherConfig = join(mkdtempSync(join(tmpdir(), "dv-ctx-")), "config.yaml");
    const noScope = await runDv(["get", "networks"], { DV_CLI_CONFIG: otherConfig });
    expect(noScope.code).toBe(2);
    expect(noScope.stderr).toMatch(
      /^dv: error: a network lives in a tenant: pass --tenant or set one in the context/,
    );

    const badId = await dv("tasks", "watch", "nope");
    expect(badId.code).toBe(2);

    const badSet = await dv("create", "network", "x", "--set", "prefixLength");
    expect(badSet.code).toBe(2);
    expect(badSet.stderr).toContain('--set "prefixLength": expected key=value');

    // The API's own validation, passed through: the field and what is allowed.
    const invalid = await dv("create", "network", "tiny", "--set", "prefixLength=31");
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/prefixLength/);
    expect(invalid.stderr.trim().split("\n")).toHaveLength(1);
    expect(readFileSync(cliConfig, "utf8")).toContain("currentContext: dev");
  });
});
