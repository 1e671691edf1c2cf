// The keys a controller takes from the outbox's announcements of other sites' events (ADR 0007).
import { describe, expect, it } from "vitest";
import { SITE_EVENT_CHANNEL, siteEventSource } from "./sources.js";

describe("siteEventSource", () => {
  it("passes on the keys of other datacenters' events and ignores its own", async () => {
    const handlers = new Map<string, (payload: string) => void>();
    const db = {
      async listen(channel: string, handler: (payload: string) => void) {
        handlers.set(channel, handler);
        return async () => void handlers.delete(channel);
      },
    };
    const keys: string[] = [];
    const stop = await siteEventSource(db, "dc1").start((key) => keys.push(key));
    const notify = handlers.get(SITE_EVENT_CHANNEL);
    notify?.("dc2 network:a,network:b");
    notify?.("dc1 network:c"); // dc1's own events reach it over JetStream
    notify?.("garbage");
    expect(keys).toEqual(["network:a", "network:b"]);
    await stop();
    expect(handlers.size).toBe(0);
  });
});
