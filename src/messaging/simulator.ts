import { z } from "zod";
import type { MessageDefinition, MessageRegistry } from "./registry.js";
import { buildSubject, WORKER_SERVICES, type WorkerService } from "./subjects.js";

/** A fault request: make a resource's operations fail (or every resource's), clear, or list. */
export const simFaultRequest = z.object({
  action: z.enum(["set", "clear", "list"]),
  /** A resource id, or `*` for every resource of the service; required by set and clear. */
  resource: z.union([z.uuid(), z.literal("*")]).optional(),
  /** Only this saga step (`bootstrap`, …); every step when absent. */
  step: z.string().min(1).max(64).optional(),
  /** `permanent` fails until cleared; `transient` fails `remaining` times. */
  mode: z.enum(["permanent", "transient"]).default("permanent"),
  remaining: z.number().int().min(1).max(1000).optional(),
  message: z.string().min(1).max(500).default("fault injected by an operator"),
});

/** A drift request: change what the simulated device holds, behind the platform's back. */
export const simDriftRequest = z.object({
  resource: z.uuid(),
  step: z.string().min(1).max(64).default("main"),
  /** Fields of the device state to overwrite. */
  state: z.record(z.string(), z.unknown()),
});

/** What a simulator control request is answered with (plain JSON, not an envelope). */
export const simReply = z.discriminatedUnion("ok", [
  z.object({
    ok: z.literal(true),
    /** How many faults or devices the request changed. */
    changed: z.number().int(),
    faults: z
      .array(
        z.object({
          resource: z.string(),
          step: z.string(),
          mode: z.string(),
          remaining: z.number().nullable(),
          message: z.string(),
        }),
      )
      .optional(),
  }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);
export type SimReply = z.infer<typeof simReply>;

/** The simulator control requests of one worker service. */
export interface SimulatorRequests {
  readonly fault: MessageDefinition<typeof simFaultRequest>;
  readonly drift: MessageDefinition<typeof simDriftRequest>;
}

/**
 * Request/reply on `dv.rpc.<service>.sim_fault` and `dv.rpc.<service>.sim_drift`, answered by
 * the service's worker while it runs the simulated driver: for tests and demos, never for tenants.
 */
export function defineSimulatorRequests(
  registry: MessageRegistry,
): Record<WorkerService, SimulatorRequests> {
  const out = {} as Record<WorkerService, SimulatorRequests>;
  for (const service of WORKER_SERVICES) {
    out[service] = {
      fault: registry.define({
        type: `${service}.sim.fault.request`,
        version: 1,
        source: "sentral",
        subject: buildSubject({ family: "rpc", service, operation: "sim_fault" }),
        description: `Sets, clears or lists faults of ${service}'s simulated driver (request/reply; answered with {ok, changed, faults} or {ok: false, error}).`,
        data: simFaultRequest,
      }),
      drift: registry.define({
        type: `${service}.sim.drift.request`,
        version: 1,
        source: "sentral",
        subject: buildSubject({ family: "rpc", service, operation: "sim_drift" }),
        description: `Changes a device of ${service}'s simulated driver behind the platform's back, to show drift correction (request/reply).`,
        data: simDriftRequest,
      }),
    };
  }
  return out;
}
