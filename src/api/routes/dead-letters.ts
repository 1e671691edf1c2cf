import { z } from "zod";
import { WORKER_SERVICES } from "../../messaging/index.js";
import { callContext } from "../http-helpers.js";
import { deadLetterOut } from "../represent.js";
import {
  DEAD_LETTER_STATE_VALUES,
  DeadLetter,
  DeadLetterAction,
  Id,
  ListQuery,
  listOf,
} from "../schemas.js";
import { problems, type RouteDeps, type ZodApp } from "./common.js";

const Params = z.strictObject({ deadLetter: Id });

const DeadLetterQuery = ListQuery.omit({ labelSelector: true }).extend({
  state: z
    .enum(DEAD_LETTER_STATE_VALUES)
    .optional()
    .meta({ description: "Only dead letters in this state (all states when absent)." }),
  service: z
    .enum(WORKER_SERVICES)
    .optional()
    .meta({ description: "Only the dead letters of this domain service." }),
});

/**
 * Dead letters (operators only): work the platform gave up on, with the message and every error,
 * until an operator replays it (after fixing the cause) or discards it. Both are audited.
 */
export function registerDeadLetterRoutes(app: ZodApp, deps: RouteDeps): void {
  const { facade, cursors } = deps;

  app.get(
    "/dead-letters",
    {
      schema: {
        summary: "List dead letters, oldest first (operators)",
        tags: ["dead letters"],
        querystring: DeadLetterQuery,
        response: { 200: listOf(DeadLetter, "DeadLetterList"), ...problems(400, 403) },
      },
    },
    async (request) => {
      const { state, service, limit, cursor } = request.query;
      const page = await facade.listDeadLetters(
        callContext(request),
        { state, service },
        { limit, after: cursors.after(request, cursor) },
      );
      return {
        items: page.items.map(deadLetterOut),
        nextCursor: cursors.next(request, page.next),
      };
    },
  );

  app.get(
    "/dead-letters/:deadLetter",
    {
      schema: {
        summary: "Get a dead letter with its message and every error (operators)",
        tags: ["dead letters"],
        params: Params,
        response: { 200: DeadLetter, ...problems(403, 404) },
      },
    },
    async (request) =>
      deadLetterOut(await facade.getDeadLetter(callContext(request), request.params.deadLetter)),
  );

  app.post(
    "/dead-letters/:deadLetter/replay",
    {
      schema: {
        summary: "Send a dead letter's message again (operators)",
        description:
          "Publishes the message again with a new id whose causation is the dead letter, puts its task back to `queued`, and records who did it and why in the audit trail. Fix the cause first. A dead letter that is not open answers 409.",
        tags: ["dead letters"],
        params: Params,
        body: DeadLetterAction,
        response: { 200: DeadLetter, ...problems(400, 403, 404, 409) },
      },
    },
    async (request) =>
      deadLetterOut(
        await facade.replayDeadLetter(
          callContext(request),
          request.params.deadLetter,
          request.body.reason,
        ),
      ),
  );

  app.post(
    "/dead-letters/:deadLetter/discard",
    {
      schema: {
        summary: "Set a dead letter aside for good (operators)",
        description:
          "Its task stays `failed`. Recorded in the audit trail. A dead letter that is not open answers 409.",
        tags: ["dead letters"],
        params: Params,
        body: DeadLetterAction,
        response: { 200: DeadLetter, ...problems(400, 403, 404, 409) },
      },
    },
    async (request) =>
      deadLetterOut(
        await facade.discardDeadLetter(
          callContext(request),
          request.params.deadLetter,
          request.body.reason,
        ),
      ),
  );
}
