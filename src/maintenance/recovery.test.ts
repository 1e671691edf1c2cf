import { describe, expect, it } from "vitest";
import type { Backup } from "../contexts/runtime/index.js";
import { assessRecovery, type RecoveryPolicySpec } from "./recovery.js";

const now = new Date("2026-12-01T12:00:00Z");

const policy = (over: Partial<RecoveryPolicySpec> = {}): RecoveryPolicySpec => ({
  context: "inventory",
  rpoClass: "minutes",
  rtoClass: "minutes",
  crossSiteReplication: "required",
  failover: "automatic",
  ...over,
});

const backup = (minutesAgo: number, scope = "database"): Backup => ({
  id: `b-${minutesAgo}`,
  state: "succeeded",
  format: "pg_dump",
  actor: "test",
  startedAt: new Date(now.getTime() - minutesAgo * 60_000 - 1_000),
  finishedAt: new Date(now.getTime() - minutesAgo * 60_000),
  bytes: 1,
  sha256: "x",
  latestMigration: null,
  error: null,
  scope,
  dataAsOf: null,
  tables: null,
  serverVersion: null,
});

const replica = (over: { lagSeconds?: number | null; lagBytes?: number; sync?: string } = {}) => ({
  name: "standby-b",
  clientAddr: "10.0.2.7",
  state: "streaming",
  syncState: over.sync ?? "async",
  lagBytes: over.lagBytes ?? 4096,
  replayLagSeconds: over.lagSeconds === undefined ? 3 : over.lagSeconds,
});

const assess = (p: RecoveryPolicySpec[], facts: Partial<Parameters<typeof assessRecovery>[2]>) =>
  assessRecovery(["inventory"], p, {
    role: "primary",
    replicas: [],
    replayLagSeconds: null,
    backups: [],
    now,
    ...facts,
  })[0];

describe("assessRecovery", () => {
  it("blocks a promotion with no replica, and counts the loss from the last backup", () => {
    const r = assess([policy()], { backups: [backup(10)] });
    expect(r).toMatchObject({
      expectedLossSeconds: 600,
      withinRpo: true,
      promotion: { state: "blocked" },
      lastBackup: { id: "b-10", ageSeconds: 600 },
    });
    expect(r?.promotion.reason).toBe(
      "no replica streams from this server: recovery is a restore from the backup of 10 min ago",
    );
    expect(assess([policy()], { backups: [backup(20)] })?.withinRpo).toBe(false);
    expect(assess([policy()], {})).toMatchObject({ expectedLossSeconds: null, withinRpo: false });
  });

  it("finds the backup of the context itself or of the whole database, not of another context", () => {
    const r = assess([policy()], { backups: [backup(1, "tenancy"), backup(5, "inventory")] });
    expect(r?.lastBackup).toMatchObject({ id: "b-5", scope: "inventory" });
  });

  it("calls a replica within the RPO safe when failover is automatic, operator-gated otherwise", () => {
    const facts = { replicas: [replica()] };
    expect(assess([policy()], facts)?.promotion).toEqual({
      state: "safe",
      reason: "standby-b is within RPO minutes (3.0 s behind); failover is automatic",
    });
    expect(assess([policy({ failover: "operator-approved" })], facts)?.promotion.state).toBe(
      "operator-gated",
    );
    expect(assess([policy({ failover: "manual" })], facts)?.promotion.reason).toMatch(
      /failover is manual: an operator promotes/,
    );
    expect(assess([policy()], facts)?.expectedLossSeconds).toBe(3);
  });

  it("blocks a replica further behind than the RPO, and RPO zero without a synchronous one", () => {
    expect(assess([policy()], { replicas: [replica({ lagSeconds: 1_200 })] })?.promotion).toEqual({
      state: "blocked",
      reason: "standby-b is 20 min behind; RPO minutes allows 15 min",
    });
    const zero = [policy({ rpoClass: "zero" })];
    expect(assess(zero, { replicas: [replica()] })?.promotion.reason).toBe(
      "RPO zero needs a synchronous replica with nothing to replay; standby-b is asynchronous, 3.0 s behind",
    );
    expect(
      assess(zero, { replicas: [replica({ sync: "sync", lagBytes: 0, lagSeconds: null })] })
        ?.promotion.state,
    ).toBe("safe");
  });

  it("weighs a replica's own lag when connected to one, and blocks a context with no policy", () => {
    expect(assess([policy()], { role: "replica", replayLagSeconds: 2 })?.promotion).toMatchObject({
      state: "safe",
    });
    expect(assess([], { replicas: [replica()] })).toMatchObject({
      policy: null,
      withinRpo: null,
      promotion: { state: "blocked" },
    });
  });
});
