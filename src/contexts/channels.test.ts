// The NOTIFY channels are named twice: in the migrations' triggers (SQL cannot import a constant)
// and in the code that LISTENs. A trigger that notifies a channel nobody listens on wakes nobody,
// and nothing else would fail: the resync would still converge, minutes late. This test keeps the
// two lists the same.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../meta/index.js";
import { SITE_EVENT_CHANNEL } from "../reconcile/index.js";
import { INTENT_CHANNEL, RESOURCE_CHANNEL } from "./inventory/index.js";
import { OUTBOX_CHANNEL } from "./runtime/index.js";
import { TASK_CHANNEL } from "./task/index.js";

/** The channels listened on that triggers feed (`dv_tenancy` is notified by its store's code). */
const FED_BY_TRIGGERS = [
  INTENT_CHANNEL,
  OUTBOX_CHANNEL,
  RESOURCE_CHANNEL,
  SITE_EVENT_CHANNEL,
  TASK_CHANNEL,
].sort();

function notifiedInMigrations(): string[] {
  const folder = join(packageRoot(), "src", "db", "migrations");
  const channels = new Set<string>();
  for (const file of readdirSync(folder).filter((f) => f.endsWith(".sql"))) {
    const text = readFileSync(join(folder, file), "utf8");
    for (const match of text.matchAll(/pg_notify\(\s*'([^']+)'/g)) channels.add(match[1] as string);
  }
  return [...channels].sort();
}

describe("NOTIFY channels", () => {
  it("that the migrations' triggers notify are the ones the code listens on, by its constants", () => {
    expect(notifiedInMigrations()).toEqual(FED_BY_TRIGGERS);
  });
});
