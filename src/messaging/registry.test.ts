import { describe, expect, it } from "vitest";
import { createEnvelope, domainCommands, MessageError, messages, taskEvents } from "./index.js";

const context = {
  id: "0195e1b2-0000-7000-8000-000000000001",
  time: new Date("2026-11-23T10:00:00.000Z"),
  subject: "n1",
  actor: "user:alice",
  correlationId: "corr-1",
  tenantId: "t1",
  datacenterId: "dc1",
};

const apply = domainCommands.nett.apply?.command;
if (!apply) throw new Error("nett.apply is not defined");

const data = {
  resource_kind: "network",
  resource_id: "n1",
  generation: 1,
  task_id: null,
  step: "main",
  vlan_id: 100,
  cidr: "10.0.0.0/24",
};

describe("the envelope and the registry", () => {
  it("builds exactly the seed's envelope, with the payload version in data", () => {
    const envelope = createEnvelope(apply, data, context);
    expect(Object.keys(envelope).sort()).toEqual(
      [
        "specversion",
        "id",
        "type",
        "source",
        "subject",
        "time",
        "datacontenttype",
        "tenant_id",
        "project_id",
        "environment_id",
        "datacenter_id",
        "actor",
        "correlation_id",
        "causation_id",
        "data",
      ].sort(),
    );
    expect(envelope).toMatchObject({
      specversion: "1.0",
      type: "nett.network.apply",
      source: "sentral",
      time: "2026-11-23T10:00:00.000Z",
      datacontenttype: "application/json",
      causation_id: null,
      data: { schema_version: 1, vlan_id: 100 },
    });
  });

  it("refuses unknown or invalid payload fields when producing", () => {
    expect(() => createEnvelope(apply, { ...data, colour: "red" }, context)).toThrow(MessageError);
    expect(() => createEnvelope(apply, { ...data, vlan_id: 5000 }, context)).toThrow("vlan_id");
  });

  it("ignores unknown fields in the envelope and the payload when consuming", () => {
    const envelope = createEnvelope(apply, data, context);
    const parsed = messages.parse({
      ...envelope,
      extension: "x",
      data: { ...envelope.data, future_field: 1 },
    });
    expect(parsed.definition.type).toBe("nett.network.apply");
    expect(parsed.data).toEqual({ ...data });
  });

  it("says why a received message cannot be used", () => {
    const envelope = createEnvelope(apply, data, context);
    const reasonOf = (raw: unknown) => {
      try {
        messages.parse(raw);
      } catch (err) {
        return (err as MessageError).reason;
      }
      return "accepted";
    };
    expect(reasonOf("not an object")).toBe("envelope");
    expect(reasonOf({ ...envelope, time: "yesterday" })).toBe("envelope");
    expect(reasonOf({ ...envelope, type: "nett.network.explode" })).toBe("unknown_type");
    expect(reasonOf({ ...envelope, data: { ...envelope.data, schema_version: 2 } })).toBe(
      "unsupported_version",
    );
    expect(reasonOf({ ...envelope, data: { ...envelope.data, vlan_id: "one hundred" } })).toBe(
      "data",
    );
  });

  it("defines every task verb and every worker service", () => {
    expect(Object.keys(taskEvents)).toEqual([
      "created",
      "queued",
      "started",
      "progress",
      "succeeded",
      "failed",
      "cancelled",
    ]);
    expect(Object.keys(domainCommands).sort()).toEqual(["maskin", "nett", "objekt", "plattform"]);
    for (const definition of messages.all())
      expect(definition.subject.startsWith("dv.")).toBe(true);
  });
});
