// Two datacenters on one machine (ADR 0007), in the foreground until Ctrl-C:
//
//   dc1: nats-server (JetStream domain dc1, accepts the site link), dv api, dv controller,
//        dv worker nett
//   dc2: nats-server (JetStream domain dc2, a leaf of dc1 through the link), dv worker nett
//   one PostgreSQL: the test server of hack/postgres.sh (database dv_sites), migrated
//
//   npx tsx hack/sites.ts            start everything; prints how to reach it, an operator
//                                    token, and the log file of every process
//   kill -USR1 <pid>                 cut the site link (every connection reset, new ones refused)
//   kill -USR2 <pid>                 heal it
//
// `bash hack/sites.sh up|cut|heal|down` does the same in the background. The platform
// configuration is test/fixtures/two-sites; src/jetstream/sites.int.test.ts runs the same topology.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../src/dev/index.js";
import { packageRoot } from "../src/meta/index.js";
import { createLogger } from "../src/observability/index.js";
import { devAuth } from "../test/support/dev-auth.js";
import { DV_BIN } from "../test/support/process.js";
import { type Site, siteEnv, startLinkedNats } from "../test/support/site-link.js";

const root = packageRoot();
const cache = join(process.env.DV_CACHE_DIR ?? join(root, ".cache"), "sites");
const logs = join(cache, "logs");
mkdirSync(logs, { recursive: true });
const log = createLogger({ level: "info", service: "hack-sites", datacenterId: "dc1" });

// Written first, so `hack/sites.sh down` stops the sites while they are still starting too; a
// signal during start-up lets the step in progress finish, then stops what has started.
writeFileSync(join(cache, "sites.pid"), String(process.pid));
interface Started {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
  readonly url: string;
}
const started: Started[] = [];
const linked: { up?: Awaited<ReturnType<typeof startLinkedNats>> } = {};
let stopRequested = false;
let up = false;
let stopping: Promise<never> | undefined;
const shutdown = (code: number): Promise<never> =>
  (stopping ??= (async () => {
    const exits = started
      .filter(({ child }) => child.exitCode === null && child.signalCode === null)
      .map(({ child }) => {
        const gone = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        return gone;
      });
    await Promise.all(exits);
    await linked.up?.link.close();
    await linked.up?.nats.dc2.stop();
    await linked.up?.nats.dc1.stop();
    process.exit(code);
  })());
const requestStop = (): void => {
  stopRequested = true;
  if (up) void shutdown(0);
};
// `on`, not `once`: a Ctrl-C arrives twice (from the terminal, and relayed by tsx), and a
// second signal must not end the process half-way through stopping.
process.on("SIGINT", requestStop);
process.on("SIGTERM", requestStop);
/** A start-up step; a stop asked for while it ran happens once it is done. */
async function step<T>(work: Promise<T>): Promise<T> {
  const value = await work;
  if (stopRequested) await shutdown(0);
  return value;
}

execFileSync("bash", [join(root, "hack/postgres.sh"), "start"], { stdio: "inherit" });
const serverUrl = execFileSync("bash", [join(root, "hack/postgres.sh"), "url"])
  .toString()
  .trim();
const admin = new pg.Client(serverUrl);
await admin.connect();
const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = 'dv_sites'");
if (exists.rowCount === 0) await admin.query("CREATE DATABASE dv_sites");
await admin.end();
const databaseUrl = serverUrl.replace(/\/postgres$/, "/dv_sites");

linked.up = await step(
  startLinkedNats({
    storeDir: (site) => join(cache, `nats-${site}`),
    log,
  }),
);
const { nats, link, leafPort } = linked.up;
const { dc1, dc2 } = nats;
// The API verifies tokens with the public half of a development key kept here; the operator
// token printed below is signed with it.
const auth = await devAuth({ dir: cache, issuer: "dataverket-sites", name: "sites" });

/**
 * Starts `dv <args>` in `site`, its output appended to `logs/<site>-<role>.log` (not kept in
 * memory: the sites may run for days).
 */
async function start(site: Site, role: string, args: readonly string[]): Promise<Started> {
  const port = await freePort();
  const file = join(logs, `${site}-${role}.log`);
  const fd = openSync(file, "a");
  const child = spawn(process.execPath, [DV_BIN, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      ...siteEnv(site, { databaseUrl, natsUrl: nats[site].url, httpPort: port }),
      ...auth.env,
      DV_LOG_LEVEL: "info",
    },
    stdio: ["ignore", fd, fd],
  });
  const one = { name: `${site} ${role}`, child, log: file, url: `http://127.0.0.1:${port}` };
  started.push(one);
  return one;
}
const processes = [
  await step(start("dc1", "api", ["api"])),
  await step(start("dc1", "controller", ["controller"])),
  await step(start("dc1", "worker-nett", ["worker", "--service", "nett"])),
  await step(start("dc2", "worker-nett", ["worker", "--service", "nett"])),
];
const api = processes[0] as Started;
const exitedOf = (child: ChildProcess): Promise<number | string> =>
  new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? -1)));
const exited = processes.map(({ child }) => exitedOf(child));
// Ready when every process answers /readyz (the API on its port; the others on theirs). One
// that exits or is not ready in time: what has started is stopped, and the reason printed.
const notReady = async (message: string): Promise<never> => {
  log.error(message);
  return shutdown(1);
};
for (const p of processes) {
  for (let tries = 0; ; tries++) {
    if (p.child.exitCode !== null) await notReady(`${p.name} exited; see ${p.log}`);
    const ok = await step(
      fetch(`${p.url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      ),
    );
    if (ok) break;
    if (tries > 600) await notReady(`${p.name} was not ready in 60 s; see ${p.log}`);
    await step(new Promise((r) => setTimeout(r, 100)));
  }
}
const token = await auth.token("operator", undefined, 12 * 3600);
writeFileSync(join(cache, "operator.token"), `${token}\n`, { mode: 0o600 });

process.on("SIGUSR1", () => {
  void link.cut().then(() => log.warn("the site link between dc1 and dc2 is cut"));
});
process.on("SIGUSR2", () => {
  void link.heal().then(() => log.warn("the site link between dc1 and dc2 is healed"));
});
up = true;
if (stopRequested) await shutdown(0);
processes.forEach(({ name, log: file }, i) => {
  void exited[i]?.then((code) => log.error({ code, log: file }, `${name} exited`));
});

process.stdout.write(
  [
    "two sites are up (Ctrl-C stops them):",
    `  dc1 NATS ${dc1.url} (JetStream domain dc1), site link on 127.0.0.1:${leafPort} via 127.0.0.1:${link.port}`,
    `  dc2 NATS ${dc2.url} (JetStream domain dc2), a leaf of dc1`,
    `  API ${api.url}/api/v1 (dc1), on PostgreSQL ${databaseUrl}`,
    `  an operator token (12 h) is in ${join(cache, "operator.token")}; to use it with dv:`,
    `    npx dv config set-context sites --server ${api.url} --nats ${dc1.url} --token "$(cat ${join(cache, "operator.token")})" --use`,
    "    npx dv create tenant acme",
    "    npx dv config set-context sites --tenant acme --project shop --environment west",
    "    npx dv create project shop && npx dv create environment west --datacenter dc2",
    "    npx dv create network web --wait",
    `  cut the link: kill -USR1 ${process.pid}   heal it: kill -USR2 ${process.pid}`,
    "  logs:",
    ...processes.map((p) => `    ${p.name.padEnd(18)} ${p.log}`),
    "",
  ].join("\n"),
);
