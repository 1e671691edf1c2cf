import { createHash } from "node:crypto";
import type { Tx } from "../db/index.js";
import type { Device, Fault, SimulatorStore } from "../simulator/index.js";
import {
  type Driver,
  type DriverRequest,
  PermanentDriverError,
  type ProgressReporter,
  TransientDriverError,
} from "./driver.js";
import { GroupCommit, type Settled } from "../kernel/index.js";

/** Options of {@link SimulatedDriver}. */
export interface SimulatedDriverOptions {
  readonly store: SimulatorStore;
  /** How long one operation takes. */
  readonly latencyMs: number;
  /** Probability (0–1) that an operation fails transiently. */
  readonly failureRate: number;
  readonly random: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  /**
   * The datacenter whose devices this worker reaches, when sites have workers of their own: a
   * command for another datacenter's infrastructure is refused, never applied here.
   */
  readonly site?: string | undefined;
}

/** Which run of {@link SimulatedDriver.applyMany} a command belongs to. */
function runOf(request: DriverRequest): "write" | "observe" | "delete" {
  return request.operation === "observe"
    ? "observe"
    : request.operation === "delete"
      ? "delete"
      : "write";
}

/** What an observation of a device answers. */
function observation(device: Device | undefined): Record<string, unknown> {
  return {
    present: device !== undefined,
    vlan_id: typeof device?.state.vlan_id === "number" ? device.state.vlan_id : null,
    cidr: typeof device?.state.cidr === "string" ? device.state.cidr : null,
  };
}

function firstHost(cidr: string): string {
  const [address = "0.0.0.0"] = cidr.split("/");
  const parts = address.split(".").map(Number);
  parts[3] = (parts[3] ?? 0) + 1;
  return parts.join(".");
}

function addressFor(id: string): string {
  const digest = createHash("sha256").update(id).digest();
  return `10.${digest[0] ?? 0}.${digest[1] ?? 0}.${Math.max(2, digest[2] ?? 2)}`;
}

/**
 * A driver that keeps its devices in PostgreSQL (the `simulator` schema) and records every side
 * effect in a ledger, with configurable latency, a random transient failure rate, and faults an
 * operator injects per resource (`dv sim fault`). It lets tests and demos exercise every path a
 * real device would: slow work, retries, permanent failure, drift.
 */
export class SimulatedDriver implements Driver {
  readonly #options: SimulatedDriverOptions;

  /**
   * The faults of commands prepared at the same time are looked up together: one statement for
   * the batch says which a fault may hit, and only those take it (locking it, using up a
   * transient one).
   */
  readonly #faults: GroupCommit<DriverRequest, Fault | undefined>;

  constructor(options: SimulatedDriverOptions) {
    this.#options = options;
    const { store } = options;
    this.#faults = new GroupCommit(async (requests) => {
      try {
        const suspects = await store.faultsAmong(requests);
        return await Promise.all(
          requests.map(async (r): Promise<Settled<Fault | undefined>> => {
            try {
              const fault = suspects.has(`${r.service}/${r.resourceId}/${r.step}`)
                ? await store.takeFault(r.service, r.resourceId, r.step)
                : undefined;
              return { ok: true, value: fault };
            } catch (error) {
              return { ok: false, error };
            }
          }),
        );
      } catch (error) {
        return requests.map(() => ({ ok: false, error }));
      }
    }, 256);
  }

  async prepare(request: DriverRequest, progress: ProgressReporter): Promise<void> {
    const { latencyMs, sleep, random, failureRate } = this.#options;
    // Faults first, outside the effect's transaction: a transient fault is used up by the
    // attempt it fails (looked up with the commands being prepared at the same time, taken in a
    // statement of its own), and no effect transaction is open while we look (an embedded database has one
    // connection only).
    const { site } = this.#options;
    if (site && request.datacenterId && request.datacenterId !== site) {
      throw new PermanentDriverError(
        `a command for ${request.datacenterId}'s infrastructure reached a worker of ${site}: it is not applied here (check DV_NATS_REMOTE_DATACENTERS and the site link's subjects)`,
      );
    }
    const fault = await this.#faults.submit(request);
    if (fault?.mode === "permanent")
      throw new PermanentDriverError(`injected fault: ${fault.message}`);
    if (fault?.mode === "transient")
      throw new TransientDriverError(`injected transient fault: ${fault.message}`);
    if (request.operation !== "observe" && failureRate > 0 && random() < failureRate) {
      throw new TransientDriverError(`simulated ${request.service} device timed out`);
    }
    if (latencyMs <= 0 || request.operation === "observe") return;
    // Long work reports progress in quarters; short work just takes its time.
    if (latencyMs < 2000) {
      await sleep(latencyMs);
      return;
    }
    for (const percent of [25, 50, 75]) {
      await sleep(latencyMs / 4);
      await progress(percent, `${request.step}: ${request.operation} ${percent}% done`);
    }
    await sleep(latencyMs / 4);
  }

  /** Instant work (no latency configured, or an observation) starts with its effect. */
  startsWithEffect(request: DriverRequest): boolean {
    return request.operation === "observe" || this.#options.latencyMs <= 0;
  }

  async apply(tx: Tx, request: DriverRequest): Promise<Record<string, unknown>> {
    const { store } = this.#options;
    const key = { service: request.service, resourceId: request.resourceId, step: request.step };
    switch (request.operation) {
      case "provision":
      case "update": {
        await store.apply(tx, {
          ...key,
          generation: request.generation,
          state: { ...request.data },
          operation: request.operation,
          messageId: request.messageId,
          appliedIn: this.#options.site,
        });
        return this.#result(request);
      }
      case "delete":
        await store.remove(tx, {
          ...key,
          messageId: request.messageId,
          appliedIn: this.#options.site,
        });
        return request.service === "maskin" ? { server_id: request.data.server_id } : {};
      case "observe": {
        return observation(
          await store.getDevice(request.service, request.resourceId, request.step, tx),
        );
      }
    }
  }

  /**
   * The effects of a batch's commands in their order, each run of provisions and updates in one
   * statement and each run of observations in another (a delete is a run of its own): nothing
   * is reordered across a write, so each observation sees what `apply` one by one would show.
   */
  async applyMany(tx: Tx, requests: readonly DriverRequest[]): Promise<Record<string, unknown>[]> {
    const { store } = this.#options;
    const out: Record<string, unknown>[] = [];
    for (let i = 0; i < requests.length;) {
      const first = requests[i] as DriverRequest;
      const kind = runOf(first);
      let end = i + 1;
      while (
        end < requests.length &&
        kind !== "delete" &&
        runOf(requests[end] as DriverRequest) === kind
      )
        end++;
      const run = requests.slice(i, end);
      if (kind === "write") {
        await store.applyMany(
          tx,
          run.map((request) => ({
            service: request.service,
            resourceId: request.resourceId,
            step: request.step,
            generation: request.generation,
            state: { ...request.data },
            operation: request.operation,
            messageId: request.messageId,
            appliedIn: this.#options.site,
          })),
        );
        for (const request of run) out.push(this.#result(request));
      } else if (kind === "observe") {
        const found = await store.getDevices(run, tx);
        for (const request of run)
          out.push(
            observation(found.get(`${request.service}/${request.resourceId}/${request.step}`)),
          );
      } else {
        out.push(await this.apply(tx, first));
      }
      i = end;
    }
    return out;
  }

  #result(request: DriverRequest): Record<string, unknown> {
    const dc = request.datacenterId ?? "local";
    switch (request.service) {
      case "nett":
        return {
          vlan_id: request.data.vlan_id,
          cidr: request.data.cidr,
          gateway: firstHost(String(request.data.cidr)),
        };
      case "maskin":
        return {
          server_id: request.data.server_id,
          address: addressFor(String(request.data.server_id)),
        };
      case "plattform":
        return {
          endpoint: `https://${request.resourceId.slice(0, 8)}.k8s.${dc}.dataverket.local:6443`,
        };
      case "objekt":
        return { endpoint: `https://${request.resourceId}.s3.${dc}.dataverket.local` };
    }
  }
}
