import type { FastifyInstance, RawServerDefault } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import type { FastifyBaseLogger } from "fastify";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ApiFacade } from "../facade.js";
import { Problem } from "../schemas.js";
import type { TaskWatcher } from "../task-watcher.js";

/** A Fastify instance whose route schemas are zod schemas. */
export type ZodApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What every route module needs. */
export interface RouteDeps {
  readonly facade: ApiFacade;
  readonly watcher: TaskWatcher;
  readonly idempotencyTtlHours: number;
}

/** Problem responses a route can give, for the OpenAPI document and the serializer. */
export function problems(...statuses: number[]): Record<number, typeof Problem> {
  return Object.fromEntries([401, 429, ...statuses].map((s) => [s, Problem]));
}
