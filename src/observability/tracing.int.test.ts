// OpenTelemetry traces end to end, into a real Jaeger (hack/jaeger.sh): a tenant's request
// through a gateway that sends a `traceparent` creates a network; the trace Jaeger holds then
// runs from that request through the reconciler's command in the outbox, its publish to NATS and
// the nett worker that carried it out — each span the child of the one before, joined only by
// what PostgreSQL rows and NATS headers carried.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../../test/support/backbone.js";
import { type DvProcess, startDv } from "../../test/support/process.js";
import { TEST_JAEGER_QUERY, TEST_OTLP_ENDPOINT } from "../../test/support/services.js";
import { freePort } from "../dev/index.js";

interface JaegerSpan {
  traceID: string;
  spanID: string;
  operationName: string;
  references: { refType: string; spanID: string }[];
  processID: string;
  tags: { key: string; value: unknown }[];
}
interface JaegerTrace {
  spans: JaegerSpan[];
  processes: Record<string, { serviceName: string }>;
}

let dev: DvProcess;
let api: string;
let token: string;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "dv-trace-"));
  const port = await freePort();
  dev = startDv(["dev"], {
    DV_HTTP_PORT: String(port),
    DV_NATS_PORT: String(await freePort()),
    DV_PGLITE_DIR: join(dir, "pglite"),
    DV_NATS_STORE_DIR: join(dir, "nats"),
    DV_AUTH_DEV_KEY_FILE: join(dir, "dev-key.json"),
    DV_LOG_LEVEL: "warn",
    OTEL_EXPORTER_OTLP_ENDPOINT: TEST_OTLP_ENDPOINT,
  });
  token = (await dev.waitFor(/export DV_TOKEN=(\S+)/, 90_000))[1] ?? "";
  api = `http://127.0.0.1:${port}/api/v1`;
}, 120_000);

afterAll(async () => {
  if (dev.child.exitCode === null) {
    dev.child.kill("SIGINT");
    await dev.exited;
  }
});

async function call<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  const response = await fetch(`${api}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

const tag = (span: JaegerSpan, key: string) => span.tags.find((t) => t.key === key)?.value;

describe("a trace from the API request to the worker", () => {
  it("joins the request, the outbox, NATS and the worker in one trace, parent to child", async () => {
    const tenant = await call<{ metadata: { id: string } }>("POST", "/tenants", { name: "traced" });
    const base = `/tenants/${tenant.metadata.id}`;
    const project = await call<{ metadata: { id: string } }>("POST", `${base}/projects`, {
      name: "p",
    });
    const envPath = `${base}/projects/${project.metadata.id}/environments`;
    const environment = await call<{ metadata: { id: string } }>("POST", envPath, {
      name: "e",
      datacenter: "dc1",
    });

    // The gateway's span: the request is its child, and so is everything the request causes.
    const traceId = randomBytes(16).toString("hex");
    const gatewaySpan = randomBytes(8).toString("hex");
    const task = await call<{ id: string; resource: { id: string } }>(
      "POST",
      `${envPath}/${environment.metadata.id}/networks`,
      { name: "web", spec: { prefixLength: 28 } },
      { traceparent: `00-${traceId}-${gatewaySpan}-01` },
    );
    expect(task.resource.id).toBeTruthy();

    const trace = await eventually(
      async () => {
        const response = await fetch(`${TEST_JAEGER_QUERY}/api/traces/${traceId}`);
        if (!response.ok) return undefined;
        const found = ((await response.json()) as { data: JaegerTrace[] }).data[0];
        // Done once the worker's event about the network has been published too.
        return found?.spans.some((s) => /^publish dv\.nett\.evt\./.test(s.operationName))
          ? found
          : undefined;
      },
      45_000,
      `Jaeger to hold trace ${traceId} up to the nett worker's event`,
    );

    const byId = new Map(trace.spans.map((s) => [s.spanID, s]));
    const parentOf = (s: JaegerSpan) => byId.get(s.references[0]?.spanID ?? "");
    const one = (pattern: RegExp) => {
      const spans = trace.spans.filter((s) => pattern.test(s.operationName));
      expect(spans.length, `spans matching ${pattern}`).toBeGreaterThanOrEqual(1);
      return spans[0] as JaegerSpan;
    };

    const request = one(/^POST \/api\/v1\/tenants\/:tenant\/.*\/networks$/);
    expect(request.references[0]?.spanID).toBe(gatewaySpan);
    expect(tag(request, "http.response.status_code")).toBe(202);
    expect(tag(request, "span.kind")).toBe("server");

    const send = one(/^send dv\.nett\.cmd\.apply$/);
    expect(parentOf(send)?.spanID).toBe(request.spanID);
    expect(tag(send, "dataverket.resource_id")).toBe(task.resource.id);

    const publish = trace.spans.find(
      (s) => s.operationName === "publish dv.nett.cmd.apply" && parentOf(s)?.spanID === send.spanID,
    );
    expect(publish, "the relay's publish of the command, a child of its send").toBeDefined();

    const process = trace.spans.find(
      (s) =>
        s.operationName === "process dv.nett.cmd.apply" && parentOf(s)?.spanID === publish?.spanID,
    );
    expect(process, "the nett worker's handling, a child of the publish").toBeDefined();
    expect(tag(process!, "span.kind")).toBe("consumer");

    const event = trace.spans.find(
      (s) =>
        /^publish dv\.nett\.evt\./.test(s.operationName) && parentOf(s)?.spanID === process?.spanID,
    );
    expect(event, "the worker's event, published as a child of its handling").toBeDefined();

    // The task's own lifecycle events belong to the same trace.
    expect(trace.spans.map((s) => s.operationName)).toContain("publish dv.task.evt.created");
    expect(new Set(Object.values(trace.processes).map((p) => p.serviceName))).toEqual(
      new Set(["dataverket-dev"]),
    );
    // No span of this trace reports an error.
    expect(trace.spans.filter((s) => tag(s, "otel.status_code") === "ERROR")).toEqual([]);
  }, 120_000);
});
