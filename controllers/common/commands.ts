import { v5 as uuidv5 } from "uuid";
import type { Resource } from "../../src/contexts/inventory/index.js";
import type { Task } from "../../src/contexts/task/index.js";
import {
  createEnvelope,
  domainCommands,
  messageHeaders,
  type WorkerService,
} from "../../src/messaging/index.js";
import { SpanKind, startSpan, traceparentOf } from "../../src/observability/index.js";
import type { LeaseGrant } from "../../src/reconcile/index.js";
import type { Command } from "./ports.js";

/** Namespace of deterministic command ids (uuid v5 of resource, generation, step, attempt). */
const COMMAND_NAMESPACE = "5b7c52f0-8d3c-4c55-9a8e-6f6f0a9e2d11";

/** One command of a resource's workflow. */
export interface StepSpec {
  readonly name: string;
  /**
   * The device step the command acts on, when it is not the step's own name: a teardown
   * (`delete:network`) or an undo (`undo:network`) acts on `network`.
   */
  readonly target?: string;
  readonly service: WorkerService;
  readonly action: string;
  readonly data: Record<string, unknown>;
  /** The command that undoes this step when a later one fails (saga compensation). */
  readonly undo?: {
    readonly service: WorkerService;
    readonly action: string;
    readonly data: Record<string, unknown>;
  };
}

/** The id of a step's command: derived, so sending it again is a duplicate NATS and workers drop. */
export function commandId(resource: Resource, step: string, attempt: number): string {
  return uuidv5(`${resource.id}/${resource.generation}/${step}/${attempt}`, COMMAND_NAMESPACE);
}

/**
 * The command of a step, as the outbox sends it: its envelope carries the resource, generation,
 * task and step, its headers the correlation id, the trace (continuing the request's that made
 * the task) and the fencing token it was sent under.
 */
export function commandFor(input: {
  readonly resource: Resource;
  readonly step: StepSpec;
  readonly attempt: number;
  readonly task: Task | null;
  readonly grant: LeaseGrant;
  readonly now: Date;
  readonly again: boolean;
}): Command {
  const { resource, step, attempt, task, grant } = input;
  const spec = domainCommands[step.service][step.action];
  if (!spec) throw new Error(`no ${step.service} command ${step.action}`);
  const id = commandId(resource, step.name, attempt);
  const correlationId = task?.correlationId ?? resource.id;
  const envelope = createEnvelope(
    spec.command,
    {
      resource_kind: resource.kind,
      resource_id: resource.id,
      generation: resource.generation,
      task_id: task?.id ?? null,
      step: step.target ?? step.name,
      ...step.data,
    },
    {
      id,
      time: input.now,
      subject: resource.id,
      actor: task?.actor ?? "sentral",
      correlationId,
      causationId: task?.id ?? null,
      tenantId: resource.tenantId,
      projectId: resource.projectId,
      environmentId: resource.environmentId,
      datacenterId: resource.datacenterId,
    },
  );
  const span = startSpan(`send ${spec.command.subject}`, {
    kind: SpanKind.PRODUCER,
    parent: task?.traceparent ?? null,
    attributes: {
      "messaging.system": "nats",
      "messaging.destination.name": spec.command.subject,
      "messaging.message.id": id,
      "dataverket.correlation_id": correlationId,
      "dataverket.resource_kind": resource.kind,
      "dataverket.resource_id": resource.id,
      "dataverket.step": step.name,
      ...(task ? { "dataverket.task_id": task.id } : {}),
    },
  });
  const traceparent = traceparentOf(span);
  span.end();
  return {
    id,
    subject: spec.command.subject,
    envelope,
    headers: {
      ...messageHeaders(correlationId, traceparent),
      "dv-fencing-token": `${grant.shard}:${grant.token}`,
    },
    again: input.again,
  };
}
