import type { FastifyInstance } from "fastify";
import type { Registry } from "../observability/index.js";

/** One dependency `/readyz` checks: resolves when healthy, rejects with the reason otherwise. */
export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<void>;
}

/** Options of {@link registerOpsRoutes}. */
export interface OpsRoutesOptions {
  readonly metrics: Registry;
  /** Checks run by `/readyz`; a getter, because dependencies join while a process starts. */
  readonly readiness: () => readonly ReadinessCheck[];
  readonly checkTimeoutMs?: number;
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return "ok";
  } catch (err) {
    return err instanceof Error && err.message ? err.message : "failed";
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Adds the routes every long-running process serves: `/healthz` (the process is alive),
 * `/readyz` (every dependency answers; 503 with the failing ones otherwise) and `/metrics`
 * (Prometheus text format).
 */
export function registerOpsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const timeoutMs = options.checkTimeoutMs ?? 2_000;
  app.get("/healthz", { logLevel: "warn" }, async () => ({ status: "ok" }));
  app.get("/readyz", { logLevel: "warn" }, async (_request, reply) => {
    const checks = options.readiness();
    const results = await Promise.all(checks.map((c) => runCheck(c, timeoutMs)));
    const detail = Object.fromEntries(checks.map((c, i) => [c.name, results[i]]));
    const ready = checks.length > 0 && results.every((r) => r === "ok");
    return reply.code(ready ? 200 : 503).send({
      status: ready ? "ready" : checks.length === 0 ? "starting" : "not ready",
      checks: detail,
    });
  });
  app.get("/metrics", { logLevel: "warn" }, async (_request, reply) => {
    return reply.type(options.metrics.contentType).send(await options.metrics.metrics());
  });
}
