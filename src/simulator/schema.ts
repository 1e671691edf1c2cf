import {
  bigint,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  uuid,
} from "drizzle-orm/pg-core";
import { timestamptz } from "../db/index.js";

/**
 * The simulated domain services' own store (what a real Nett, Maskin, Plattform or Objekt would
 * keep in their own databases): the state of what they built, a ledger of every side effect, and
 * injected faults. Not a Sentral context; the workers' simulated drivers own it.
 */
export const simulator = pgSchema("simulator");

/** What a simulated device holds for a resource (one row per resource and step). */
export const devices = simulator.table(
  "devices",
  {
    service: text().notNull(),
    resourceId: uuid().notNull(),
    step: text().notNull(),
    generation: bigint({ mode: "number" }).notNull(),
    state: jsonb().$type<Record<string, unknown>>().notNull(),
    updatedAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "devices_pkey", columns: [t.service, t.resourceId, t.step] })],
);

/** Every side effect a simulated driver applied, with the command that caused it. */
export const effects = simulator.table(
  "effects",
  {
    id: bigint({ mode: "number" }).primaryKey().generatedAlwaysAsIdentity(),
    service: text().notNull(),
    resourceId: uuid().notNull(),
    step: text().notNull(),
    operation: text().notNull(),
    messageId: text().notNull(),
    at: timestamptz().notNull().defaultNow(),
    /** The datacenter of the worker that applied it, when sites have workers of their own. */
    appliedIn: text(),
  },
  (t) => [index("effects_message").on(t.messageId), index("effects_resource").on(t.resourceId)],
);

/** Faults an operator injected: a resource whose operations fail, permanently or a few times. */
export const faults = simulator.table(
  "faults",
  {
    service: text().notNull(),
    resourceId: uuid().notNull(),
    /** `permanent` (never succeeds) or `transient` (fails `remaining` more times). */
    mode: text().notNull(),
    remaining: integer(),
    /** Only this step (`bootstrap`, …), or every step when empty. */
    step: text().notNull().default(""),
    message: text().notNull(),
    createdAt: timestamptz().notNull().defaultNow(),
  },
  (t) => [primaryKey({ name: "faults_pkey", columns: [t.service, t.resourceId, t.step] })],
);
