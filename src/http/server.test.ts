// Requests refused before any route sees them — by Node's HTTP parser or by the router — are
// answered as problem+json like every other error, on a real loopback socket.
import { connect } from "node:net";
import { Writable } from "node:stream";
import type { FastifyInstance } from "fastify";
import { Registry } from "prom-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../observability/index.js";
import { createHttpServer } from "./server.js";

let app: FastifyInstance;
let port: number;

beforeAll(async () => {
  app = createHttpServer({
    log: createLogger({ level: "silent", service: "test", datacenterId: "dc1" }),
    metrics: new Registry(),
    bodyLimitBytes: 1024,
  });
  app.get("/things/:thing", async (request) => request.params);
  await app.listen({ host: "127.0.0.1", port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => app.close());

/** Sends `request` as raw bytes and resolves with everything the server answers. */
function raw(request: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => socket.end(request));
    let answer = "";
    socket.on("data", (chunk: Buffer) => (answer += chunk.toString("utf8")));
    socket.on("error", reject);
    socket.on("close", () => {
      const [head = "", body = ""] = answer.split("\r\n\r\n");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, headers: head.toLowerCase(), body });
    });
  });
}

describe("errors before routing", () => {
  it("answers headers over 16 KiB with a 431 problem, not Fastify's {error}", async () => {
    const answer = await raw(
      `GET /things/a HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(17 * 1024)}\r\n\r\n`,
    );
    expect(answer.status).toBe(431);
    expect(answer.headers).toContain("content-type: application/problem+json");
    expect(JSON.parse(answer.body)).toMatchObject({
      type: "https://dataverket.io/problems/request-header-fields-too-large",
      status: 431,
      detail: expect.stringContaining("16384 bytes") as string,
    });
  });

  it("answers a URL over 16 KiB the same way", async () => {
    const answer = await raw(`GET /things/${"a".repeat(17 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.body)).toMatchObject({ status: 431 });
  });

  it("answers a path that is not valid percent-encoding with a 400 problem", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/things/%E0%A4%A`);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({
      type: "https://dataverket.io/problems/invalid-request",
      status: 400,
      detail: "the path is not valid percent-encoded UTF-8",
      instance: "/things/%E0%A4%A",
    });
  });

  it("answers a path segment over the router's limit with a 400 problem", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/things/${"a".repeat(150)}`);
    expect(response.status).toBe(400);
    expect(response.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await response.json()).toMatchObject({
      status: 400,
      detail: "a path segment is too long",
    });
  });

  it("answers malformed HTTP with a 400 problem", async () => {
    const answer = await raw("NOT HTTP AT ALL\r\n\r\n");
    expect(answer.status).toBe(400);
    expect(answer.headers).toContain("content-type: application/problem+json");
    expect(JSON.parse(answer.body)).toMatchObject({ status: 400 });
  });
});

describe("request logs", () => {
  it("write one access line per request, with its correlation id, and none for probes", async () => {
    const lines: Record<string, unknown>[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString("utf8").split("\n").filter(Boolean))
          lines.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const logged = createHttpServer({
      log: createLogger({ level: "info", service: "test", datacenterId: "dc1", destination }),
      metrics: new Registry(),
      bodyLimitBytes: 1024,
    });
    logged.get("/things/:thing", async (request) => {
      request.log.warn({ token: "secret" }, "looked at a thing");
      return request.params;
    });
    logged.get("/healthz", async () => ({ status: "ok" }));
    await logged.ready();
    try {
      const response = await logged.inject({
        method: "GET",
        url: "/things/a?cursor=abc",
        headers: { "x-correlation-id": "corr-1" },
      });
      expect(response.statusCode).toBe(200);
      await logged.inject({ method: "GET", url: "/healthz" });
      const fresh = await logged.inject({ method: "GET", url: "/things/b" });
      const id = fresh.headers["x-correlation-id"] as string;
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(lines.map((l) => [l.msg, l.correlation_id])).toEqual([
        ["looked at a thing", "corr-1"],
        ["request completed", "corr-1"],
        ["looked at a thing", id],
        ["request completed", id],
      ]);
      expect(lines[0]).toMatchObject({ level: "warn", token: "[REDACTED]" });
      expect(lines[1]).toMatchObject({
        level: "info",
        req: { method: "GET", url: "/things/a?cursor=…" },
        res: { statusCode: 200 },
        responseTime: expect.any(Number) as number,
      });
    } finally {
      await logged.close();
    }
  });
});
