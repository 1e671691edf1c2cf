// Creates that arrive together are written together (ResourceFacade's group commit). When the
// database is down, the batch that failed is not taken apart into one transaction per create:
// each would fail alike. Every request gets the outage as its answer (a 503 at the API).
import { describe, expect, it } from "vitest";
import { type Database, isDatabaseUnavailable } from "../../db/index.js";
import type { Admission } from "../admission.js";
import type { FacadeCore } from "./core.js";
import { ResourceFacade } from "./resources.js";
import type { CallContext, Scope } from "./scope.js";

const TENANT = "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e7f";
const PROJECT = "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e80";
const ENVIRONMENT = "0195e1b2-7c3a-7d10-9a4e-2f1c3b5d6e81";

const operator: CallContext = {
  principal: { subject: "test", role: "operator" },
  correlationId: "test",
};

/** A database that cannot be reached: every transaction and every ping is refused, and counted. */
function unreachable() {
  const counts = { transactions: 0, pings: 0 };
  const refused = () =>
    Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
  const db = {
    async transaction() {
      counts.transactions++;
      // The connection attempt fails on a later turn, as the driver's does: the other requests
      // queue up behind this one meanwhile.
      await new Promise((resolve) => setImmediate(resolve));
      throw refused();
    },
    async ping() {
      counts.pings++;
      throw refused();
    },
  } as unknown as Database;
  return { db, counts };
}

/** Everything a create asks before it writes, answered from memory: the path is known. */
function core(db: Database): FacadeCore {
  const scope = {
    async path() {
      return {
        tenantId: TENANT,
        projectId: PROJECT,
        environment: { id: ENVIRONMENT, projectId: PROJECT, datacenterId: "dc1", tenantId: TENANT },
      };
    },
  } as unknown as Scope;
  const admission = { async resource() {} } as unknown as Admission;
  return { db, scope, admission } as unknown as FacadeCore;
}

describe("creates while the database is down", () => {
  it("tries each batch once, and answers every create with the outage", async () => {
    const { db, counts } = unreachable();
    const facade = new ResourceFacade(core(db));
    const path = { tenant: TENANT, project: PROJECT, environment: ENVIRONMENT };
    const outcomes = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        facade.createResource(operator, path, "network", {
          name: `n${i}`,
          spec: { prefixLength: 28 },
        }),
      ),
    );

    expect(outcomes.every((o) => o.status === "rejected" && isDatabaseUnavailable(o.reason))).toBe(
      true,
    );
    // The first create finds the batcher idle and is written alone; those that queued behind it
    // go in batches (one, today). Taking a batch apart on an outage would try each of its creates
    // again: at least sixteen attempts in all.
    expect(counts.transactions).toBeGreaterThanOrEqual(2);
    expect(counts.transactions).toBeLessThan(16);
  });
});
