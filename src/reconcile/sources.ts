import type { Source } from "./manager.js";

/**
 * A source of keys from PostgreSQL `LISTEN`: every `NOTIFY` on `channel` carries one key
 * (`<kind>:<id>`), sent after the commit that changed the resource's intent.
 */
export function listenSource(
  db: {
    listen(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
  },
  channel: string,
): Source {
  return {
    name: `LISTEN ${channel}`,
    start: (enqueue) => db.listen(channel, (payload) => enqueue(payload)),
  };
}
