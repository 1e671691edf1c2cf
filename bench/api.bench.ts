// The API's write and read paths on a real PostgreSQL, through the whole Fastify stack
// (routing, JWT verification, validation, serialisation) by inject, without a socket: creating a
// network writes its intent, task, audit record and outbox message in one transaction.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../test/support/api.js";
import { percentile, report, timedPool } from "./support/report.js";
import { size } from "./support/scale.js";

const CREATES = size(1_000, 200);
const READS = size(2_000, 400);
const CONCURRENCY = 16;

let api: ApiHarness;
let seeded: Seeded;
beforeAll(async () => {
  api = await startApi();
  seeded = await seedTenant(api, "bench");
});
afterAll(async () => api.close());

describe("API", () => {
  it(`${CREATES} network creates, ${CONCURRENCY} at a time, then ${READS} reads of each kind`, async () => {
    const base = `/api/v1/tenants/${seeded.tenant.id}/projects/${seeded.project.id}/environments/${seeded.environment.id}/networks`;
    const names = Array.from({ length: CREATES }, (_, i) => `net-${i}`);
    const started = performance.now();
    const writes = await timedPool(names, CONCURRENCY, async (name) => {
      const r = await api.call(seeded.adminToken, {
        method: "POST",
        url: base,
        payload: { name, spec: { prefixLength: 28 } },
      });
      expect(r.statusCode, r.body).toBe(202);
    });
    const writeSeconds = (performance.now() - started) / 1000;

    const readPath = async (url: (i: number) => string) => {
      const readStarted = performance.now();
      const took = await timedPool(
        Array.from({ length: READS }, (_, i) => i),
        CONCURRENCY,
        async (i) => {
          const r = await api.call(seeded.adminToken, { method: "GET", url: url(i) });
          expect(r.statusCode, r.body).toBe(200);
        },
      );
      return { took, seconds: (performance.now() - readStarted) / 1000 };
    };
    const one = await readPath((i) => `${base}/net-${i % CREATES}`);
    const list = await readPath(() => `${base}?limit=50`);
    report("api", {
      "create network, throughput": [CREATES / writeSeconds, "req/s"],
      "create network, p50": [percentile(writes, 50), "ms"],
      "create network, p99": [percentile(writes, 99), "ms"],
      "get network by name, throughput": [READS / one.seconds, "req/s"],
      "get network by name, p50": [percentile(one.took, 50), "ms"],
      "list 50 networks, throughput": [READS / list.seconds, "req/s"],
      "list 50 networks, p50": [percentile(list.took, 50), "ms"],
      "list 50 networks, p99": [percentile(list.took, 99), "ms"],
      "heap used after": [process.memoryUsage().heapUsed / 2 ** 20, "MiB"],
    });
  });
});
