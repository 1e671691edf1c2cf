// Two datacenters on one machine (ADR 0007): each its own nats-server with its own JetStream
// domain, linked as a leaf node through a TCP relay the test can cut; one PostgreSQL; `dv`
// processes of either site. The same topology `hack/sites.sh` starts for a person.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ApiFacade } from "../../src/api/index.js";
import { createServices, syncPlatformDirectory } from "../../src/app/index.js";
import { type EmbeddedNats, freePort, startEmbeddedNats } from "../../src/dev/index.js";
import { newId } from "../../src/kernel/index.js";
import { packageRoot } from "../../src/meta/index.js";
import { createLogger } from "../../src/observability/index.js";
import { eventually, FAST_WORKERS } from "./backbone.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { FAST_CONTROLLER } from "./plane.js";
import { type DvProcess, startDv } from "./process.js";
import { startTcpRelay, type TcpRelay } from "./tcp-relay.js";
import { databaseUrl } from "./template.js";

export const TWO_SITES_FIXTURE = fileURLToPath(new URL("../fixtures/two-sites", import.meta.url));

export type Site = "dc1" | "dc2";

/** Two linked sites and the database they share. */
export interface Sites {
  readonly t: TestDatabase;
  readonly facade: ApiFacade;
  readonly nats: Readonly<Record<Site, EmbeddedNats>>;
  /** The site link: cut it for a partition, heal it after. */
  readonly link: TcpRelay;
  /** Starts `dv <args>` in `site`; resolves once its /readyz answers 200. */
  spawn(site: Site, args: readonly string[]): Promise<DvProcess & { port: number }>;
  close(): Promise<void>;
}

const silent = createLogger({ level: "silent", service: "test-sites", datacenterId: "dc1" });

export async function startSites(): Promise<Sites> {
  const t = await createTestDatabase();
  const services = createServices(t.db, newId);
  await syncPlatformDirectory(services, TWO_SITES_FIXTURE, silent);
  const base = { log: silent, repoRoot: packageRoot(), searchPath: process.env.PATH ?? "" };
  const leafPort = await freePort();
  const dc1 = await startEmbeddedNats({
    ...base,
    port: await freePort(),
    storeDir: mkdtempSync(join(tmpdir(), "dv-site-dc1-")),
    serverName: "dc1",
    domain: "dc1",
    leafPort,
  });
  const link = await startTcpRelay(leafPort);
  const dc2 = await startEmbeddedNats({
    ...base,
    port: await freePort(),
    storeDir: mkdtempSync(join(tmpdir(), "dv-site-dc2-")),
    serverName: "dc2",
    domain: "dc2",
    leafRemote: `nats-leaf://127.0.0.1:${link.port}`,
  });
  const nats = { dc1, dc2 };
  const children: DvProcess[] = [];
  return {
    t,
    facade: new ApiFacade({ db: t.db, newId, now: () => new Date() }),
    nats,
    link,
    async spawn(site, args) {
      const port = await freePort();
      const proc = startDv(args, {
        DATABASE_URL: databaseUrl(t.name),
        NATS_URL: nats[site].url,
        DV_DATACENTER_ID: site,
        DV_NATS_REMOTE_DATACENTERS: site === "dc1" ? "dc2" : "dc1",
        DV_HTTP_PORT: String(port),
        DV_LOG_LEVEL: process.env.DV_TEST_LOG ?? "warn",
        DV_PLATFORM_CONFIG_DIR: TWO_SITES_FIXTURE,
        DV_CONTROLLER_SHARDS: String(FAST_CONTROLLER.shards),
        DV_LEASE_TTL_MS: String(FAST_CONTROLLER.leaseTtlMs),
        DV_LEASE_RENEW_MS: String(FAST_CONTROLLER.leaseRenewMs),
        DV_LEASE_RETRY_MS: String(FAST_CONTROLLER.leaseRetryMs),
        DV_RESYNC_MS: String(FAST_CONTROLLER.resyncMs),
        DV_REDISPATCH_AFTER_MS: String(FAST_CONTROLLER.redispatchAfterMs),
        DV_WORKER_ACK_WAIT_MS: String(FAST_WORKERS.ackWaitMs),
        DV_WORKER_MAX_ATTEMPTS: String(FAST_WORKERS.maxAttempts),
        DV_WORKER_BACKOFF_BASE_MS: String(FAST_WORKERS.backoffBaseMs),
        DV_WORKER_BACKOFF_MAX_MS: String(FAST_WORKERS.backoffMaxMs),
        DV_SIM_LATENCY_MS: "0",
      });
      children.push(proc);
      await eventually(
        async () => {
          if (proc.child.exitCode !== null)
            throw new Error(`dv ${args.join(" ")} (${site}) exited: ${proc.stderr()}`);
          const response = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
          return response?.status === 200 ? true : undefined;
        },
        30_000,
        `dv ${args.join(" ")} in ${site} to be ready`,
      );
      return Object.assign(proc, { port });
    },
    async close() {
      for (const child of children) {
        if (child.child.exitCode === null && child.child.signalCode === null) {
          child.child.kill("SIGKILL");
          await child.exited;
        }
      }
      await link.close();
      await dc2.stop();
      await dc1.stop();
      await t.drop();
    },
  };
}
