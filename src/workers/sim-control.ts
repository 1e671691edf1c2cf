import {
  type Msg,
  type NatsConnection,
  NoRespondersError,
  RequestError,
  type Subscription,
} from "@nats-io/transport-node";
import type { z } from "zod";
import type { IdGenerator } from "../kernel/index.js";
import {
  createEnvelope,
  messages,
  type SimReply,
  simReply,
  simulatorRequests,
  type simDriftRequest,
  type simFaultRequest,
  type WorkerService,
} from "../messaging/index.js";
import type { Logger } from "../observability/index.js";
import { EVERY_RESOURCE, type SimulatorStore } from "../simulator/index.js";

/** Options of {@link serveSimulatorControl}. */
export interface SimulatorControlOptions {
  readonly nc: NatsConnection;
  readonly service: WorkerService;
  readonly store: SimulatorStore;
  readonly log: Logger;
}

/**
 * Answers `dv.rpc.<service>.sim_fault` and `dv.rpc.<service>.sim_drift` for a worker running the
 * simulated driver: inject or clear faults, list them, change a device behind the platform's
 * back. One queue group per service, so one worker of several answers.
 */
export function serveSimulatorControl(options: SimulatorControlOptions): {
  stop(): Promise<void>;
} {
  const { nc, service, store, log } = options;
  const definitions = simulatorRequests[service];
  const subscriptions: Subscription[] = [];
  const handle = async (msg: Msg): Promise<SimReply> => {
    let parsed;
    try {
      parsed = messages.parse(msg.json());
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : "not a valid request" };
    }
    if (parsed.definition === definitions.fault) {
      const request = parsed.data as z.output<typeof simFaultRequest>;
      return fault(store, service, request);
    }
    if (parsed.definition === definitions.drift) {
      const request = parsed.data as z.output<typeof simDriftRequest>;
      const changed = await store.drift(service, request.resource, request.step, request.state);
      if (!changed)
        return {
          ok: false,
          error: `${service} has no device for ${request.resource}/${request.step}`,
        };
      log.warn({ resource: request.resource, step: request.step }, "simulated drift injected");
      return { ok: true, changed: 1 };
    }
    return { ok: false, error: `${parsed.definition.type} is not asked on ${msg.subject}` };
  };
  for (const definition of [definitions.fault, definitions.drift]) {
    subscriptions.push(
      nc.subscribe(definition.subject, {
        queue: `dv-${service}-sim`,
        callback: (err, msg) => {
          if (err) {
            log.warn({ err }, "simulator control subscription failed");
            return;
          }
          void handle(msg)
            .catch((e: unknown): SimReply => {
              log.warn({ err: e }, "simulator control request failed");
              return { ok: false, error: e instanceof Error ? e.message : String(e) };
            })
            .then((reply) => msg.respond(JSON.stringify(reply)));
        },
      }),
    );
  }
  return {
    async stop() {
      for (const sub of subscriptions) sub.unsubscribe();
    },
  };
}

async function fault(
  store: SimulatorStore,
  service: WorkerService,
  request: z.output<typeof simFaultRequest>,
): Promise<SimReply> {
  const resourceId = request.resource === "*" ? EVERY_RESOURCE : request.resource;
  if (request.action === "list") {
    const faults = (await store.listFaults()).filter((f) => f.service === service);
    return {
      ok: true,
      changed: 0,
      faults: faults.map((f) => ({
        resource: f.resourceId === EVERY_RESOURCE ? "*" : f.resourceId,
        step: f.step,
        mode: f.mode,
        remaining: f.remaining,
        message: f.message,
      })),
    };
  }
  if (resourceId === undefined)
    return { ok: false, error: `resource is required to ${request.action} a fault` };
  if (request.action === "clear")
    return { ok: true, changed: await store.clearFaults(resourceId, service) };
  await store.setFault({
    service,
    resourceId,
    ...(request.step ? { step: request.step } : {}),
    mode: request.mode,
    ...(request.remaining ? { remaining: request.remaining } : {}),
    message: request.message,
  });
  return { ok: true, changed: 1 };
}

/**
 * Asks a worker's simulated driver over NATS and returns its answer.
 *
 * @throws {MessageError} when the request does not fit its schema, naming the fields.
 * @throws {Error} naming the subject when no worker of the service answers.
 */
export async function askSimulator(
  nc: NatsConnection,
  service: WorkerService,
  what: "fault" | "drift",
  data: z.input<typeof simFaultRequest> | z.input<typeof simDriftRequest>,
  context: { actor: string; newId: IdGenerator; timeoutMs?: number },
): Promise<SimReply> {
  const definition = simulatorRequests[service][what];
  // A request that does not fit throws MessageError naming the fields.
  const envelope = createEnvelope(definition as never, data as never, {
    id: context.newId(),
    time: new Date(),
    subject: (data as { resource?: string }).resource ?? service,
    actor: context.actor,
    correlationId: context.newId(),
  });
  try {
    const reply = await nc.request(definition.subject, JSON.stringify(envelope), {
      timeout: context.timeoutMs ?? 5_000,
    });
    return simReply.parse(reply.json());
  } catch (err) {
    if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
      throw new Error(
        `no ${service} worker answered on ${definition.subject}: start one (dv worker --service ${service}, or dv dev)`,
        { cause: err },
      );
    }
    throw err;
  }
}
