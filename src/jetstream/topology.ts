import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import {
  DEAD_LETTER_CONSUMER,
  SERVICES,
  siteCommandFilter,
  workerConsumer,
  type WorkerService,
} from "../messaging/index.js";

const NS = 1_000_000;
const DAY_NS = 24 * 3600 * 1000 * NS;

/** Names of the streams and consumers; per site in a multi-datacenter setup. */
export interface TopologyNames {
  readonly commands: string;
  readonly events: string;
  readonly taskEvents: string;
  readonly deadLetters: string;
  readonly advisories: string;
}

/** The default names: one set of streams per JetStream domain (datacenter). */
export const STREAMS: TopologyNames = {
  commands: "DV_COMMANDS",
  events: "DV_EVENTS",
  taskEvents: "DV_TASK_EVENTS",
  deadLetters: "DV_DEAD_LETTERS",
  advisories: "DV_ADVISORIES",
};

/** Tunables of the topology. */
export interface TopologyOptions {
  /** Window in which a re-published message id is dropped. */
  readonly duplicateWindowMs: number;
  /** How long a worker has to ack (or call `working()`) before redelivery. */
  readonly ackWaitMs: number;
  /** Deliveries after which the server gives up and advises (the worker dead-letters first). */
  readonly maxDeliver: number;
  readonly replicas: number;
  /**
   * The datacenter this NATS serves when sites have NATS servers of their own (ADR 0007): its
   * command stream also takes that site's coordination subjects (`dv.site.<site>.*.cmd.*`),
   * stored as the plain command subject. Absent: one NATS for every datacenter.
   */
  readonly site?: string | undefined;
}

export const DEFAULT_TOPOLOGY: TopologyOptions = {
  duplicateWindowMs: 10 * 60_000,
  ackWaitMs: 30_000,
  maxDeliver: 8,
  replicas: 1,
};

/** The streams, as declared. */
export function streamConfigs(
  names: TopologyNames,
  options: TopologyOptions,
): Partial<StreamConfig>[] {
  const common = {
    storage: StorageType.File,
    num_replicas: options.replicas,
    duplicate_window: options.duplicateWindowMs * NS,
    discard: DiscardPolicy.Old,
  };
  const eventServices = SERVICES.filter((s) => s !== "sentral");
  return [
    {
      ...common,
      name: names.commands,
      description:
        "Commands to domain services (dv.<service>.cmd.<action>): each handled once, then removed",
      subjects: ["dv.*.cmd.>", ...(options.site ? [siteCommandFilter(options.site)] : [])],
      // A command another site sent over the link is stored as the command itself.
      ...(options.site
        ? {
            subject_transform: {
              src: siteCommandFilter(options.site),
              dest: "dv.{{wildcard(1)}}.cmd.{{wildcard(2)}}",
            },
          }
        : {}),
      retention: RetentionPolicy.Workqueue,
      // A work queue must refuse rather than drop: the outbox keeps what cannot be stored.
      discard: DiscardPolicy.New,
    },
    {
      ...common,
      name: names.events,
      description:
        "Domain events of the services (dv.<service>.evt.<entity>.<verb>), replayable for 7 days",
      subjects: eventServices.map((s) => `dv.${s}.evt.>`),
      retention: RetentionPolicy.Limits,
      max_age: 7 * DAY_NS,
    },
    {
      ...common,
      name: names.taskEvents,
      description: "Task lifecycle events (dv.task.evt.<verb>), replayable for 7 days",
      subjects: ["dv.task.evt.>"],
      retention: RetentionPolicy.Limits,
      max_age: 7 * DAY_NS,
    },
    {
      ...common,
      name: names.deadLetters,
      description:
        "Dead-letter notifications (dv.sentral.evt.dead_letter.<verb>); the dead letters themselves are in PostgreSQL",
      subjects: ["dv.sentral.evt.>"],
      retention: RetentionPolicy.Limits,
      max_age: 30 * DAY_NS,
    },
    {
      ...common,
      name: names.advisories,
      description: "JetStream advisories of commands that ran out of deliveries or were terminated",
      subjects: [
        `$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${names.commands}.*`,
        `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${names.commands}.*`,
      ],
      retention: RetentionPolicy.Limits,
      max_age: 7 * DAY_NS,
      duplicate_window: 0,
    },
  ];
}

/** The durable consumers, as declared: one pull consumer per worker service, one for advisories. */
export function consumerConfigs(
  names: TopologyNames,
  options: TopologyOptions,
  services: readonly WorkerService[],
) {
  const workers = services.map((service): { stream: string; config: Partial<ConsumerConfig> } => ({
    stream: names.commands,
    config: {
      durable_name: workerConsumer(service),
      description: `${service} workers`,
      filter_subject: `dv.${service}.cmd.>`,
      ack_policy: AckPolicy.Explicit,
      ack_wait: options.ackWaitMs * NS,
      max_deliver: options.maxDeliver,
      max_ack_pending: 10_000,
      deliver_policy: DeliverPolicy.All,
    },
  }));
  return [
    ...workers,
    {
      stream: names.advisories,
      config: {
        durable_name: DEAD_LETTER_CONSUMER,
        description: "dead-letter processor",
        ack_policy: AckPolicy.Explicit,
        ack_wait: 30 * 1000 * NS,
        max_deliver: -1,
        deliver_policy: DeliverPolicy.All,
      },
    },
  ];
}

function isNotFound(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamNotFound ||
      err.code === JetStreamApiCodes.ConsumerNotFound)
  );
}

/**
 * Creates or updates every stream and durable consumer so the server matches the declaration.
 * Safe to run from every process at every start.
 */
export async function ensureTopology(
  jsm: JetStreamManager,
  names: TopologyNames = STREAMS,
  options: TopologyOptions = DEFAULT_TOPOLOGY,
  services: readonly WorkerService[] = ["maskin", "nett", "plattform", "objekt"],
): Promise<void> {
  for (const config of streamConfigs(names, options)) {
    const name = config.name as string;
    try {
      await jsm.streams.info(name);
      await jsm.streams.update(name, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.streams.add({ ...config, name });
    }
  }
  for (const { stream, config } of consumerConfigs(names, options, services)) {
    const name = config.durable_name as string;
    try {
      await jsm.consumers.info(stream, name);
      await jsm.consumers.update(stream, name, config);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await jsm.consumers.add(stream, config);
    }
  }
}
