// A plane (plane.ts) as a deployment serves it: the platform controllers on the configuration
// directory (recording every platform object's conditions, as `dv dev` runs them without a
// cluster) and the public API on a loopback port, with tokens of a development key.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mountApi } from "../../src/app/api.js";
import { startPlatform } from "../../src/app/platform.js";
import { loadDevKey, mintToken, type Role } from "../../src/auth/index.js";
import { loadConfig } from "../../src/config/index.js";
import { createHttpServer } from "../../src/http/index.js";
import { createLogger, createMetricsRegistry } from "../../src/observability/index.js";
import { FAST_CONTROLLER, PLATFORM_FIXTURE, type Plane } from "./plane.js";

/** The API of a plane on a port. */
export interface ServedPlane {
  /** `http://127.0.0.1:<port>`; the API is under `/api/v1`. */
  readonly origin: string;
  /** A token of the development key the API verifies with. */
  token(role: Role, tenant?: string): Promise<string>;
  close(): Promise<void>;
}

/**
 * Starts the platform controllers on test/fixtures/platform and the API over `plane`'s database
 * on a loopback port. Stopped by {@link ServedPlane.close} (the controllers with the plane).
 */
export async function servePlane(plane: Plane): Promise<ServedPlane> {
  const keyFile = join(mkdtempSync(join(tmpdir(), "dv-served-")), "key.json");
  const loaded = loadConfig({
    env: {
      DV_AUTH_DEV_KEY_FILE: keyFile,
      DV_PLATFORM_CONFIG_DIR: PLATFORM_FIXTURE,
      DV_API_RATE_LIMIT: "100000",
    },
    cwd: process.cwd(),
  });
  const config = { ...loaded, controller: { ...loaded.controller, ...FAST_CONTROLLER } };
  const log = createLogger({
    level: process.env.DV_TEST_LOG ?? "silent",
    service: "test-served",
    datacenterId: "dc1",
  });
  await startPlatform({ config, services: plane.services, log, lifecycle: plane.lifecycle });
  const app = createHttpServer({
    log,
    metrics: createMetricsRegistry(),
    bodyLimitBytes: config.http.bodyLimitBytes,
  });
  await mountApi({
    app,
    config,
    db: plane.t.db,
    log,
    metrics: createMetricsRegistry(),
    lifecycle: plane.lifecycle,
    allowDevKey: true,
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  const key = await loadDevKey(keyFile, false);
  return {
    origin: `http://127.0.0.1:${port}`,
    token: (role, tenant) =>
      mintToken({
        key,
        issuer: config.auth.issuer,
        audience: config.auth.audience,
        subject: `${role}-user`,
        role,
        ...(tenant ? { tenant } : {}),
        ttlSeconds: 3600,
      }),
    close: () => app.close(),
  };
}
