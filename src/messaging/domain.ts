import { z } from "zod";
import type { MessageDefinition, MessageRegistry } from "./registry.js";
import { commandSubject, eventSubject, type WorkerService } from "./subjects.js";

/**
 * What every command carries: the resource it serves (a cluster's network is applied for the
 * cluster), the generation it brings about, the task to report to, and the saga step.
 */
export const commandBase = z.object({
  resource_kind: z.enum(["network", "server", "cluster", "bucket"]),
  resource_id: z.string(),
  generation: z.number().int().min(0),
  /** The task to report `started`/`progress` to; null for corrections the platform makes itself. */
  task_id: z.string().nullable(),
  /** The saga step (`network`, `server:<name>`, `bootstrap`, …); `main` for one-step resources. */
  step: z.string().min(1),
});

/** What every domain event carries: which resource, generation and step it answers. */
export const eventBase = z.object({
  resource_kind: z.enum(["network", "server", "cluster", "bucket"]),
  resource_id: z.string(),
  generation: z.number().int().min(0),
  step: z.string().min(1),
  /** The command this event answers. */
  command_id: z.string(),
});

/** How a command maps onto a driver operation, and the event that announces it was done. */
export interface CommandSpec {
  readonly command: MessageDefinition;
  readonly operation: "provision" | "update" | "delete" | "observe";
  readonly event: MessageDefinition;
}

function define(
  registry: MessageRegistry,
  service: WorkerService,
  spec: {
    action: string;
    operation: CommandSpec["operation"];
    entity: string;
    verb: string;
    description: string;
    command: z.ZodObject;
    event: z.ZodObject;
  },
): CommandSpec {
  const command = registry.define({
    type: `${service}.${spec.entity}.${spec.action}`,
    version: 1,
    source: "sentral",
    subject: commandSubject(service, spec.action),
    description: spec.description,
    data: commandBase.extend(spec.command.shape),
  });
  const event = registry.define({
    type: `${service}.${spec.entity}.${spec.verb}`,
    version: 1,
    source: service,
    subject: eventSubject(service, spec.entity, spec.verb),
    description: `${service} reports that a ${spec.entity} was ${spec.verb.replaceAll("_", " ")}.`,
    data: eventBase.extend(spec.event.shape),
  });
  return {
    command: command,
    operation: spec.operation,
    event: event,
  };
}

/** Defines every command and event of the domain services; returns them by service and action. */
export function defineDomainMessages(
  registry: MessageRegistry,
): Record<WorkerService, Record<string, CommandSpec>> {
  const network = z.object({ vlan_id: z.number().int().min(1).max(4094), cidr: z.string() });
  const nothing = z.object({});
  return {
    nett: {
      apply: define(registry, "nett", {
        action: "apply",
        operation: "provision",
        entity: "network",
        verb: "applied",
        description:
          "Configure a tenant network (VLAN and prefix) on the datacenter's switches and routers.",
        command: network,
        event: network.extend({ gateway: z.string() }),
      }),
      teardown: define(registry, "nett", {
        action: "teardown",
        operation: "delete",
        entity: "network",
        verb: "torn_down",
        description: "Remove a tenant network from the datacenter's switches and routers.",
        command: nothing,
        event: nothing,
      }),
      observe: define(registry, "nett", {
        action: "observe",
        operation: "observe",
        entity: "network",
        verb: "observed",
        description: "Report how a network is actually configured (drift detection).",
        command: nothing,
        event: z.object({
          present: z.boolean(),
          vlan_id: z.number().int().nullable(),
          cidr: z.string().nullable(),
        }),
      }),
    },
    maskin: {
      provision: define(registry, "maskin", {
        action: "provision",
        operation: "provision",
        entity: "server",
        verb: "provisioned",
        description: "Install and power on a physical server for a tenant.",
        command: z.object({
          server_id: z.string(),
          server_name: z.string(),
          machine_class: z.string(),
          image: z.string(),
        }),
        event: z.object({ server_id: z.string(), address: z.string() }),
      }),
      deprovision: define(registry, "maskin", {
        action: "deprovision",
        operation: "delete",
        entity: "server",
        verb: "deprovisioned",
        description: "Wipe and power off a server so it can return to its pool.",
        command: z.object({ server_id: z.string() }),
        event: z.object({ server_id: z.string() }),
      }),
    },
    plattform: {
      bootstrap: define(registry, "plattform", {
        action: "bootstrap",
        operation: "provision",
        entity: "cluster",
        verb: "bootstrapped",
        description: "Bootstrap Kubernetes on a cluster's servers.",
        command: z.object({ version: z.string(), servers: z.array(z.string()), cidr: z.string() }),
        event: z.object({ endpoint: z.string() }),
      }),
      teardown: define(registry, "plattform", {
        action: "teardown",
        operation: "delete",
        entity: "cluster",
        verb: "torn_down",
        description: "Remove Kubernetes from a cluster's servers.",
        command: nothing,
        event: nothing,
      }),
    },
    objekt: {
      create_bucket: define(registry, "objekt", {
        action: "create_bucket",
        operation: "provision",
        entity: "bucket",
        verb: "created",
        description: "Create (or resize) an object-storage bucket.",
        command: z.object({ quota_bytes: z.number().int().positive(), versioning: z.boolean() }),
        event: z.object({ endpoint: z.string() }),
      }),
      delete_bucket: define(registry, "objekt", {
        action: "delete_bucket",
        operation: "delete",
        entity: "bucket",
        verb: "deleted",
        description: "Delete an object-storage bucket and its objects.",
        command: nothing,
        event: nothing,
      }),
    },
  };
}

/** Payload of Sentral's dead-letter events. */
export const deadLetterEventData = z.object({
  dead_letter_id: z.string(),
  message_id: z.string(),
  subject: z.string(),
  service: z.string(),
  resource_kind: z.string().nullable(),
  resource_id: z.string().nullable(),
  task_id: z.string().nullable(),
  reason: z.string(),
});

/** `sentral.dead_letter.created|replayed|discarded` on `dv.sentral.evt.dead_letter.<verb>`. */
export function defineDeadLetterEvents(registry: MessageRegistry) {
  const one = (verb: "created" | "replayed" | "discarded", description: string) =>
    registry.define({
      type: `sentral.dead_letter.${verb}`,
      version: 1,
      source: "sentral",
      subject: eventSubject("sentral", "dead_letter", verb),
      description,
      data: deadLetterEventData,
    });
  return {
    created: one(
      "created",
      "A command could not be carried out and was set aside with its errors; its task failed.",
    ),
    replayed: one(
      "replayed",
      "An operator replayed a dead letter: its command was sent again with a new id.",
    ),
    discarded: one("discarded", "An operator discarded a dead letter: it will not be retried."),
  };
}
