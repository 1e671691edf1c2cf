// The dead-letter routes of the API: operators only; list and filter, show everything recorded,
// replay (the message goes out again under a new id caused by the dead letter, the task is back
// to queued, the audit trail says who and why), discard, and 409 for anything not open.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiHarness, type Seeded, seedTenant, startApi } from "../../test/support/api.js";
import { AuditStore } from "../contexts/audit/index.js";
import { DeadLetterStore, InboxStore, OutboxStore } from "../contexts/runtime/index.js";
import { newId } from "../kernel/index.js";
import { DeadLetterService, TaskService } from "../workflow/index.js";

let api: ApiHarness;
let acme: Seeded;
let operator: string;
let service: DeadLetterService;

beforeAll(async () => {
  api = await startApi();
  operator = await api.token("operator", undefined, undefined, "alice");
  acme = await seedTenant(api, "acme");
  const outbox = new OutboxStore(api.t.db);
  service = new DeadLetterService({
    db: api.t.db,
    deadLetters: new DeadLetterStore(api.t.db),
    inbox: new InboxStore(api.t.db),
    outbox,
    audit: new AuditStore(api.t.db),
    tasks: new TaskService({ tasks: api.facade.tasks, outbox, newId, now: () => new Date() }),
    newId,
    now: () => new Date(),
  });
});
afterAll(async () => api.close());

/** Records a dead letter for the seeded network's command, as a worker would. */
async function deadLetter(reason = "permanent: the switch refused the VLAN"): Promise<string> {
  const messageId = newId();
  const task = await api.facade.tasks.get(acme.task.id);
  await service.record({
    consumer: "dv-nett",
    service: "nett",
    messageId,
    subject: "dv.nett.cmd.apply",
    envelope: {
      specversion: "1.0",
      id: messageId,
      type: "nett.network.apply",
      source: "sentral",
      subject: acme.network.id,
      tenant_id: acme.tenant.id,
      datacenter_id: "dc1",
      correlation_id: task.correlationId,
      causation_id: task.id,
      data: {
        schema_version: 1,
        resource_kind: "network",
        resource_id: acme.network.id,
        task_id: task.id,
        step: "main",
      },
    },
    errors: [{ at: new Date().toISOString(), code: "DV_DRIVER", message: reason }],
    deliveryCount: 1,
    reason,
  });
  const [row] = await api.t.admin.query<{ id: string }>(
    "SELECT id FROM runtime.dead_letters WHERE message_id = $1",
    [messageId],
  );
  return row!.id;
}

function problemOf(response: {
  statusCode: number;
  headers: Record<string, unknown>;
  body: string;
}) {
  expect(response.headers["content-type"]).toMatch(/^application\/problem\+json/);
  return { status: response.statusCode, ...(JSON.parse(response.body) as Record<string, unknown>) };
}

describe("dead letters", () => {
  it("are for operators only: a tenant admin is refused", async () => {
    await deadLetter();
    const response = await api.call(acme.adminToken, {
      method: "GET",
      url: "/api/v1/dead-letters",
    });
    expect(problemOf(response)).toMatchObject({ status: 403 });
  });

  it("are listed with their correlation context, and filtered by state and service", async () => {
    const id = await deadLetter();
    const all = await api.call(operator, { method: "GET", url: "/api/v1/dead-letters?state=open" });
    expect(all.statusCode).toBe(200);
    const item = all.json<{ items: { id: string }[] }>().items.find((d) => d.id === id) as Record<
      string,
      unknown
    >;
    const task = await api.facade.tasks.get(acme.task.id);
    expect(item).toMatchObject({
      kind: "DeadLetter",
      state: "open",
      service: "nett",
      subject: "dv.nett.cmd.apply",
      taskId: acme.task.id,
      correlationId: task.correlationId,
      causationId: acme.task.id,
      deliveryCount: 1,
      reason: "permanent: the switch refused the VLAN",
    });
    const maskin = await api.call(operator, {
      method: "GET",
      url: "/api/v1/dead-letters?service=maskin",
    });
    expect(maskin.json()).toEqual({ items: [] });
    const bad = await api.call(operator, { method: "GET", url: "/api/v1/dead-letters?state=lost" });
    expect(problemOf(bad)).toMatchObject({ status: 400 });
    expect(bad.body).toContain("state");
  });

  it("show the whole message and every error; an unknown one is 404", async () => {
    const id = await deadLetter("permanent: no such port");
    const response = await api.call(operator, { method: "GET", url: `/api/v1/dead-letters/${id}` });
    expect(response.json()).toMatchObject({
      id,
      envelope: { type: "nett.network.apply", data: { resource_id: acme.network.id } },
      errors: [{ code: "DV_DRIVER", message: "permanent: no such port" }],
    });
    const missing = await api.call(operator, {
      method: "GET",
      url: `/api/v1/dead-letters/${newId()}`,
    });
    expect(problemOf(missing)).toMatchObject({ status: 404 });
  });

  it("replay: the message again under a new id caused by the dead letter, the task queued, audited", async () => {
    const id = await deadLetter();
    expect((await api.facade.tasks.get(acme.task.id)).state).toBe("failed");
    const noReason = await api.call(operator, {
      method: "POST",
      url: `/api/v1/dead-letters/${id}/replay`,
      payload: {},
    });
    expect(problemOf(noReason)).toMatchObject({ status: 400 });
    expect(noReason.body).toContain("reason");

    const response = await api.call(operator, {
      method: "POST",
      url: `/api/v1/dead-letters/${id}/replay`,
      payload: { reason: "the switch is fixed" },
    });
    expect(response.statusCode).toBe(200);
    const replayed = response.json<{
      state: string;
      replayMessageId: string;
      resolvedBy: string;
    }>();
    expect(replayed).toMatchObject({ state: "replayed", resolvedBy: "operator:alice" });
    const [sent] = await api.t.admin.query<{ subject: string; envelope: Record<string, unknown> }>(
      "SELECT subject, envelope FROM runtime.outbox WHERE id = $1",
      [replayed.replayMessageId],
    );
    expect(sent).toMatchObject({
      subject: "dv.nett.cmd.apply",
      envelope: { id: replayed.replayMessageId, causation_id: id, type: "nett.network.apply" },
    });
    expect((await api.facade.tasks.get(acme.task.id)).state).toBe("queued");
    const audit = await api.call(operator, {
      method: "GET",
      url: `/api/v1/audit?resourceKind=dead_letter&resourceId=${id}`,
    });
    expect(audit.json()).toMatchObject({
      items: [
        {
          action: "dead_letter.replay",
          actor: "operator:alice",
          after: { state: "replayed", reason: "the switch is fixed" },
        },
      ],
    });

    // Nothing twice: a replayed dead letter can be neither replayed nor discarded.
    for (const action of ["replay", "discard"]) {
      const again = await api.call(operator, {
        method: "POST",
        url: `/api/v1/dead-letters/${id}/${action}`,
        payload: { reason: "again" },
      });
      expect(problemOf(again)).toMatchObject({ status: 409 });
    }
  });

  it("discard: set aside for good, audited, the task stays failed", async () => {
    // The seeded task is queued again after the replay above; fail it again through a new letter.
    const id = await deadLetter();
    const response = await api.call(operator, {
      method: "POST",
      url: `/api/v1/dead-letters/${id}/discard`,
      payload: { reason: "the network was given up" },
    });
    expect(response.json()).toMatchObject({ state: "discarded", replayMessageId: null });
    expect((await api.facade.tasks.get(acme.task.id)).state).toBe("failed");
    const audit = await api.call(operator, {
      method: "GET",
      url: `/api/v1/audit?resourceKind=dead_letter&resourceId=${id}`,
    });
    expect(audit.json()).toMatchObject({ items: [{ action: "dead_letter.discard" }] });
  });
});
