// Two datacenters on one machine (ADR 0007), in the foreground until Ctrl-C:
//
//   dc1: nats-server (JetStream domain dc1, accepts the site link), dv controller, dv worker nett
//   dc2: nats-server (JetStream domain dc2, a leaf of dc1 through the link), dv worker nett
//   one PostgreSQL: the test server of hack/postgres.sh (database dv_sites), migrated
//
//   npx tsx hack/sites.ts            start everything; prints how to reach it
//   kill -USR1 <pid>                 cut the site link (every connection reset, new ones refused)
//   kill -USR2 <pid>                 heal it
//
// `bash hack/sites.sh up|cut|heal|down` does the same in the background. The platform
// configuration is test/fixtures/two-sites; src/jetstream/sites.int.test.ts runs the same topology.
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../src/dev/index.js";
import { packageRoot } from "../src/meta/index.js";
import { createLogger } from "../src/observability/index.js";
import { startDv } from "../test/support/process.js";
import { type Site, siteEnv, startLinkedNats } from "../test/support/site-link.js";

const root = packageRoot();
const cache = join(process.env.DV_CACHE_DIR ?? join(root, ".cache"), "sites");
mkdirSync(cache, { recursive: true });
const log = createLogger({ level: "info", service: "hack-sites", datacenterId: "dc1" });

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

const { nats, link, leafPort } = await startLinkedNats({
  storeDir: (site) => join(cache, `nats-${site}`),
  log,
});
const { dc1, dc2 } = nats;
const env = async (site: Site): Promise<Record<string, string>> => ({
  ...siteEnv(site, { databaseUrl, natsUrl: nats[site].url, httpPort: await freePort() }),
  DV_AUTH_DEV_KEY_FILE: join(cache, "dev-key.json"),
  DV_LOG_LEVEL: "info",
});
const processes = [
  { name: "dc1 controller", proc: startDv(["controller"], await env("dc1")) },
  { name: "dc1 worker nett", proc: startDv(["worker", "--service", "nett"], await env("dc1")) },
  { name: "dc2 worker nett", proc: startDv(["worker", "--service", "nett"], await env("dc2")) },
];
writeFileSync(join(cache, "sites.pid"), String(process.pid));

process.on("SIGUSR1", () => {
  void link.cut().then(() => log.warn("the site link between dc1 and dc2 is cut"));
});
process.on("SIGUSR2", () => {
  void link.heal().then(() => log.warn("the site link between dc1 and dc2 is healed"));
});
const stop = async (): Promise<void> => {
  for (const { proc } of processes) proc.child.kill("SIGTERM");
  await Promise.all(processes.map(({ proc }) => proc.exited));
  await link.close();
  await dc2.stop();
  await dc1.stop();
  process.exit(0);
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());
for (const { name, proc } of processes) {
  void proc.exited.then((code) =>
    log.error({ code, stderr: proc.stderr().slice(-2000) }, `${name} exited`),
  );
}

process.stdout.write(
  [
    "two sites are up (Ctrl-C stops them):",
    `  dc1 NATS ${dc1.url} (JetStream domain dc1), site link on 127.0.0.1:${leafPort} via 127.0.0.1:${link.port}`,
    `  dc2 NATS ${dc2.url} (JetStream domain dc2), a leaf of dc1`,
    `  PostgreSQL ${databaseUrl}`,
    `  cut the link: kill -USR1 ${process.pid}   heal it: kill -USR2 ${process.pid}`,
    "  create networks in environments of dc1 and dc2 through an API on the same database",
    "",
  ].join("\n"),
);
