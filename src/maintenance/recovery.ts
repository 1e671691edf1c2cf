import type { Backup } from "../contexts/runtime/index.js";

/** A replica streaming from this server (`pg_stat_replication`; `databaseStatus` reads it). */
export interface ReplicaStatus {
  readonly name: string;
  readonly clientAddr: string | null;
  readonly state: string;
  readonly syncState: string;
  /** WAL the replica has not replayed yet, in bytes. */
  readonly lagBytes: number | null;
  readonly replayLagSeconds: number | null;
}

/** A RecoveryPolicy's spec (seed 002), as the platform context stores it. */
export interface RecoveryPolicySpec {
  readonly context: string;
  readonly rpoClass: "zero" | "minutes" | "hours" | "day";
  readonly rtoClass: "minutes" | "hours" | "day";
  readonly crossSiteReplication: "required" | "optional" | "not-assumed";
  readonly failover: "automatic" | "operator-approved" | "manual";
}

/** The most data each RPO class may lose, in seconds. `zero`: a synchronous replica only. */
export const RPO_SECONDS: Readonly<Record<RecoveryPolicySpec["rpoClass"], number>> = {
  zero: 0,
  minutes: 15 * 60,
  hours: 4 * 3600,
  day: 24 * 3600,
};

/** The longest each RTO class may take to recover, in seconds. */
export const RTO_SECONDS: Readonly<Record<RecoveryPolicySpec["rtoClass"], number>> = {
  minutes: 15 * 60,
  hours: 4 * 3600,
  day: 24 * 3600,
};

/** Whether promoting a replica now would be safe, and why (or why not). */
export interface Promotion {
  /**
   * `safe`: a replica is within the RPO and the policy lets failover be automatic;
   * `operator-gated`: within the RPO, but the policy wants an operator (approved or manual);
   * `blocked`: promoting now would lose more than the RPO allows, or there is nothing to promote.
   */
  readonly state: "safe" | "blocked" | "operator-gated";
  readonly reason: string;
}

/** One bounded context's recovery posture: its policy next to the facts. */
export interface ContextRecovery {
  readonly context: string;
  readonly policy: RecoveryPolicySpec | null;
  /** The newest succeeded backup that holds this context (whole-database or its own). */
  readonly lastBackup: {
    readonly id: string;
    readonly scope: string;
    readonly finishedAt: string;
    readonly ageSeconds: number;
  } | null;
  /**
   * What losing the primary now would lose, in seconds of writes: the best replica's lag when
   * one streams, else the time since the last backup; null when there is no backup either
   * (everything).
   */
  readonly expectedLossSeconds: number | null;
  /** Whether that loss is within the policy's RPO class; null without a policy. */
  readonly withinRpo: boolean | null;
  readonly promotion: Promotion;
}

/** The facts {@link assessRecovery} weighs. */
export interface RecoveryFacts {
  readonly role: "primary" | "replica";
  readonly replicas: readonly ReplicaStatus[];
  /** On a replica: how far behind its primary's last commit it is. */
  readonly replayLagSeconds: number | null;
  /** Succeeded backups, newest first. */
  readonly backups: readonly Backup[];
  readonly now: Date;
}

const seconds = (n: number): string =>
  n < 120
    ? `${n.toFixed(n < 10 ? 1 : 0)} s`
    : n < 7200
      ? `${Math.round(n / 60)} min`
      : `${(n / 3600).toFixed(1)} h`;

/** The replica a promotion would pick: the one least behind. */
function bestCandidate(
  facts: RecoveryFacts,
): { name: string; lag: number | null; sync: boolean } | undefined {
  if (facts.role === "replica")
    return { name: "this server", lag: facts.replayLagSeconds, sync: false };
  const streaming = facts.replicas.filter((r) => r.state === "streaming");
  const sorted = [...streaming].sort(
    (a, b) => (a.replayLagSeconds ?? Infinity) - (b.replayLagSeconds ?? Infinity),
  );
  const best = sorted.find((r) => r.syncState === "sync" || r.syncState === "quorum") ?? sorted[0];
  return best
    ? {
        name: best.name,
        lag: best.lagBytes === 0 ? 0 : best.replayLagSeconds,
        sync: best.syncState === "sync" || best.syncState === "quorum",
      }
    : undefined;
}

/**
 * Weighs each context's policy against the facts (seed 002: an operator must be able to tell
 * whether a promotion is currently safe, blocked or operator-gated, and what a failure would lose).
 */
export function assessRecovery(
  contexts: readonly string[],
  policies: readonly RecoveryPolicySpec[],
  facts: RecoveryFacts,
): ContextRecovery[] {
  const candidate = bestCandidate(facts);
  return contexts.map((context) => {
    const policy = policies.find((p) => p.context === context) ?? null;
    const backup = facts.backups.find(
      (b) => b.state === "succeeded" && (b.scope === "database" || b.scope === context),
    );
    const backupAge = backup
      ? Math.max(
          0,
          (facts.now.getTime() - (backup.finishedAt ?? backup.startedAt).getTime()) / 1000,
        )
      : null;
    const expectedLossSeconds = candidate && candidate.lag !== null ? candidate.lag : backupAge;
    const rpo = policy ? RPO_SECONDS[policy.rpoClass] : undefined;
    const withinRpo =
      rpo === undefined
        ? null
        : policy?.rpoClass === "zero"
          ? candidate?.sync === true && candidate.lag === 0
          : expectedLossSeconds !== null && expectedLossSeconds <= rpo;
    const promotion = ((): Promotion => {
      if (!policy)
        return {
          state: "blocked",
          reason: `no RecoveryPolicy declares ${context}'s targets: apply one (config/platform/recovery-policies.yaml)`,
        };
      if (!candidate)
        return {
          state: "blocked",
          reason: `no replica streams from this server: recovery is a restore from ${backup ? `the backup of ${backupAge === null ? "?" : seconds(backupAge)} ago` : "a backup, and there is none"}`,
        };
      if (candidate.lag === null)
        return { state: "blocked", reason: `${candidate.name} has replayed nothing yet` };
      if (withinRpo !== true)
        return {
          state: "blocked",
          reason:
            policy.rpoClass === "zero"
              ? `RPO zero needs a synchronous replica with nothing to replay; ${candidate.name} is ${candidate.sync ? "synchronous" : "asynchronous"}, ${seconds(candidate.lag)} behind`
              : `${candidate.name} is ${seconds(candidate.lag)} behind; RPO ${policy.rpoClass} allows ${seconds(rpo ?? 0)}`,
        };
      const within = `${candidate.name} is within RPO ${policy.rpoClass} (${seconds(candidate.lag)} behind)`;
      if (policy.failover === "automatic")
        return { state: "safe", reason: `${within}; failover is automatic` };
      return {
        state: "operator-gated",
        reason:
          policy.failover === "operator-approved"
            ? `${within}; failover waits for an operator's approval`
            : `${within}; failover is manual: an operator promotes and repoints the control plane`,
      };
    })();
    return {
      context,
      policy,
      lastBackup:
        backup && backupAge !== null
          ? {
              id: backup.id,
              scope: backup.scope,
              finishedAt: (backup.finishedAt ?? backup.startedAt).toISOString(),
              ageSeconds: Math.round(backupAge),
            }
          : null,
      expectedLossSeconds: expectedLossSeconds === null ? null : Math.round(expectedLossSeconds),
      withinRpo,
      promotion,
    };
  });
}
