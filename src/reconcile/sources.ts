import type { Source } from "./manager.js";

/** What the sources of this file need of the database: `LISTEN`. */
export interface Listener {
  listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
}

/**
 * A source of keys from PostgreSQL `LISTEN`: every `NOTIFY` on `channel` is read by `keysOf`
 * (by default, the payload is one key, `<kind>:<id>`), sent after the commit that changed the
 * resource's intent.
 */
export function listenSource(
  db: Listener,
  channel: string,
  keysOf: (payload: string) => Iterable<string> = (payload) => [payload],
): Source {
  return {
    name: `LISTEN ${channel}`,
    start: (enqueue) =>
      db.listen(channel, (payload) => {
        for (const key of keysOf(payload)) enqueue(key);
      }),
  };
}

/** The channel on which the outbox announces the resources its events name (migration 0019). */
export const SITE_EVENT_CHANNEL = "dv_site_event";

/**
 * A source of keys from events written by processes of other datacenters (ADR 0007): the outbox
 * notifies `<origin> <key>,<key>,…` on {@link SITE_EVENT_CHANNEL} for every event it takes, and
 * this source passes on the keys of every origin but `datacenterId` — that site's events reach
 * the controllers over its own JetStream. A remote worker's outcome wakes the resource's
 * controller at the commit that records it, as a local one's does, instead of at the next resync.
 */
export function siteEventSource(db: Listener, datacenterId: string): Source {
  return listenSource(db, SITE_EVENT_CHANNEL, (payload) => {
    const space = payload.indexOf(" ");
    if (space < 0 || payload.slice(0, space) === datacenterId) return [];
    return payload
      .slice(space + 1)
      .split(",")
      .filter((key) => key !== "");
  });
}
