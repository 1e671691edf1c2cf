// Two datacenters on one machine (ADR 0007): each its own nats-server with its own JetStream
// domain, linked as a leaf node through a TCP relay the test can cut; one PostgreSQL; `dv`
// processes of either site. The same topology `hack/sites.sh` starts for a person.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiFacade } from "../../src/api/index.js";
import { syncPlatformDirectory } from "../../controllers/index.js";
import { createServices } from "../../src/app/index.js";
import { type EmbeddedNats, freePort } from "../../src/dev/index.js";
import { newId } from "../../src/kernel/index.js";
import { createLogger } from "../../src/observability/index.js";
import { eventually, FAST_WORKERS } from "./backbone.js";
import { createTestDatabase, type TestDatabase } from "./database.js";
import { FAST_CONTROLLER } from "./plane.js";
import { type DvProcess, startDv } from "./process.js";
import type { TcpRelay } from "./tcp-relay.js";
import { databaseUrl } from "./template.js";

import { type Site, siteEnv, startLinkedNats, TWO_SITES_FIXTURE } from "./site-link.js";

export { type Site, TWO_SITES_FIXTURE } from "./site-link.js";

/** Two linked sites and the database they share. */
export interface Sites {
  readonly t: TestDatabase;
  readonly facade: ApiFacade;
  readonly nats: Readonly<Record<Site, EmbeddedNats>>;
  /** The site link: cut it for a partition, heal it after. */
  readonly link: TcpRelay;
  /**
   * Starts `dv <args>` in `site`; resolves once its /readyz answers 200. `env` adds to or
   * replaces the test settings (FAST_CONTROLLER's, FAST_WORKERS').
   */
  spawn(
    site: Site,
    args: readonly string[],
    env?: Record<string, string>,
  ): Promise<DvProcess & { port: number }>;
  close(): Promise<void>;
}

const silent = createLogger({ level: "silent", service: "test-sites", datacenterId: "dc1" });

export async function startSites(): Promise<Sites> {
  const t = await createTestDatabase();
  const services = createServices(t.db, newId);
  await syncPlatformDirectory(services, TWO_SITES_FIXTURE, silent);
  const { nats, link } = await startLinkedNats({
    storeDir: (site) => mkdtempSync(join(tmpdir(), `dv-site-${site}-`)),
    log: silent,
  });
  const children: DvProcess[] = [];
  return {
    t,
    facade: new ApiFacade({ db: t.db, newId, now: () => new Date() }),
    nats,
    link,
    async spawn(site, args, extra = {}) {
      const port = await freePort();
      const proc = startDv(args, {
        ...siteEnv(site, {
          databaseUrl: databaseUrl(t.name),
          natsUrl: nats[site].url,
          httpPort: port,
        }),
        DV_LOG_LEVEL: process.env.DV_TEST_LOG ?? "warn",
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
        ...extra,
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
      await nats.dc2.stop();
      await nats.dc1.stop();
      await t.drop();
    },
  };
}
