// docs/operator-guide.md, step by step, with `dv` alone against `npm run dev`: the context dv dev
// writes, create a tenant, project, environment and network, watch the task to its end, break
// the nett worker, find the dead letter, replay it, and tear down. Output formats must parse and
// exit codes must match the documented ones.
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../../test/support/backbone.js";
import { type DvProcess, runDv, startDv } from "../../../test/support/process.js";
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
      id: string;
      taskId: string;
    }[];
    const letter = letters.find((d) => d.taskId === taskId);
    expect(letter).toBeDefined();
    expect((await dv("sim", "fault", "clear", "--service", "nett", "--all")).code).toBe(0);
    expect((await dv("dlq", "replay", letter?.id ?? "", "--reason", "switch is back")).code).toBe(
      0,
    );
    const watched = await dv("tasks", "watch", taskId);
    expect(watched.code).toBe(0);
    expect(watched.stdout).toMatch(/succeeded \(network\.create\)\n$/);
    const tasks = JSON.parse((await dv("tasks", "list", "-o", "json")).stdout) as {
      state: string;
    }[];
    expect(tasks.map((t) => t.state).sort()).toEqual(["succeeded", "succeeded"]);
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
  }, 180_000);

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
      'dv: error: unknown kind "flavours"; one of: tenant, project, environment, network, server, cluster, bucket\n',
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
