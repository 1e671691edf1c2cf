// The site link of two datacenters on one machine (ADR 0007): two nats-servers with JetStream
// domains dc1 and dc2, dc2 a leaf node of dc1 through a TCP relay that can be cut. Used by the
// tests (test/support/sites.ts) and by hack/sites.ts, so it imports nothing of vitest.
import { fileURLToPath } from "node:url";
import { type EmbeddedNats, freePort, startEmbeddedNats } from "../../src/dev/index.js";
import { packageRoot } from "../../src/meta/index.js";
import type { Logger } from "../../src/observability/index.js";
import { startTcpRelay, type TcpRelay } from "./tcp-relay.js";

export const TWO_SITES_FIXTURE = fileURLToPath(new URL("../fixtures/two-sites", import.meta.url));

export type Site = "dc1" | "dc2";

/** Two nats-servers, JetStream domains dc1 and dc2, dc2 a leaf of dc1 through a cuttable relay. */
export async function startLinkedNats(options: {
  readonly storeDir: (site: Site) => string;
  readonly log: Logger;
}): Promise<{ nats: Record<Site, EmbeddedNats>; link: TcpRelay; leafPort: number }> {
  const base = { log: options.log, repoRoot: packageRoot(), searchPath: process.env.PATH ?? "" };
  const leafPort = await freePort();
  const dc1 = await startEmbeddedNats({
    ...base,
    port: await freePort(),
    storeDir: options.storeDir("dc1"),
    serverName: "dc1",
    domain: "dc1",
    leafPort,
  });
  const link = await startTcpRelay(leafPort);
  const dc2 = await startEmbeddedNats({
    ...base,
    port: await freePort(),
    storeDir: options.storeDir("dc2"),
    serverName: "dc2",
    domain: "dc2",
    leafRemote: `nats-leaf://127.0.0.1:${link.port}`,
  });
  return { nats: { dc1, dc2 }, link, leafPort };
}

/** The environment of a `dv` process of `site`: its own NATS, the other site remote. */
export function siteEnv(
  site: Site,
  options: { databaseUrl: string; natsUrl: string; httpPort: number },
): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    NATS_URL: options.natsUrl,
    DV_DATACENTER_ID: site,
    DV_NATS_REMOTE_DATACENTERS: site === "dc1" ? "dc2" : "dc1",
    DV_HTTP_PORT: String(options.httpPort),
    DV_PLATFORM_CONFIG_DIR: TWO_SITES_FIXTURE,
  };
}
