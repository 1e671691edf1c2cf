import type { z } from "zod";
import type { Resource } from "../../src/contexts/inventory/index.js";
import { Stall } from "./pass.js";

/**
 * A resource's spec, read through its kind's one schema (src/contexts/inventory/kinds.ts, the
 * same the API validates with and the OpenAPI document publishes). A spec the schema refuses —
 * written by hand, or by a version that allowed it — stalls the resource for good, naming the
 * field, instead of failing its pass again and again.
 */
export function specOf<S extends z.ZodType>(schema: S, resource: Resource): z.output<S> {
  const parsed = schema.safeParse(resource.spec);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = ["spec", ...(issue?.path ?? []).map(String)].join(".");
  throw new Stall("InvalidSpec", `${field}: ${issue?.message ?? "not a valid spec"}`, true);
}
