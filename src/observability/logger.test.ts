import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, redactUrl } from "./index.js";

function capture(): { stream: Writable; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return {
    stream,
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

const CANARY = "canary-4f1d9b2e-secret";

describe("createLogger", () => {
  it("writes JSON lines with service, datacenter and an ISO time", () => {
    const out = capture();
    const log = createLogger({
      level: "info",
      service: "dv-test",
      datacenterId: "osl1",
      destination: out.stream,
    });
    log.child({ correlation_id: "c-1" }).info("hello");
    const [line] = out.lines();
    expect(line).toMatchObject({
      level: "info",
      service: "dv-test",
      datacenter_id: "osl1",
      correlation_id: "c-1",
      msg: "hello",
    });
    expect(String(line?.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it("never prints a secret-looking field, at the top or nested", () => {
    const out = capture();
    const log = createLogger({
      level: "info",
      service: "dv-test",
      datacenterId: "osl1",
      destination: out.stream,
    });
    log.info({ password: CANARY, token: CANARY }, "top");
    log.info({ req: { headers: { authorization: `Bearer ${CANARY}`, cookie: CANARY } } }, "nested");
    log.info({ config: { database: { password: CANARY } }, user: { apiKey: CANARY } }, "deep");
    const text = JSON.stringify(out.lines());
    expect(out.lines()).toHaveLength(3);
    expect(text).not.toContain(CANARY);
    expect(text).toContain("[REDACTED]");
  });

  it("respects the level", () => {
    const out = capture();
    const log = createLogger({
      level: "warn",
      service: "dv-test",
      datacenterId: "osl1",
      destination: out.stream,
    });
    log.info("quiet");
    log.warn("loud");
    expect(out.lines().map((l) => l.msg)).toEqual(["loud"]);
  });
});

describe("redactUrl", () => {
  it("hides the password and keeps the rest", () => {
    expect(redactUrl(`postgres://dv:${CANARY}@db:5432/dv`)).toBe(
      "postgres://dv:REDACTED@db:5432/dv",
    );
    expect(redactUrl("nats://127.0.0.1:4222")).toBe("nats://127.0.0.1:4222");
    expect(redactUrl("not a url")).toBe("[unparseable URL]");
  });
});
