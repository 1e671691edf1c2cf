// The resource cache on a fake of its database port (notifications and a barrier the test
// controls); src/api/facade/resource-reads.int.test.ts holds it to the same against PostgreSQL.
import { describe, expect, it } from "vitest";
import { NotFoundError } from "../../kernel/index.js";
import type { Resource } from "./model.js";
import { ResourceCache, type ResourceCacheDatabase } from "./resource-cache.js";

const TENANT = "00000000-0000-4000-8000-000000000001";
const OTHER = "00000000-0000-4000-8000-000000000002";
const ID = "00000000-0000-4000-8000-0000000000a1";

/** A table of rows, the announcements of its changes, and a barrier that may fail. */
function world() {
  const rows = new Map<string, Resource>();
  const handlers: ((payload: string) => void)[] = [];
  let reads = 0;
  let epoch = 1;
  let failing = false;
  let inRead: (() => void) | undefined;
  const db: ResourceCacheDatabase = {
    async listen(_channel, handler) {
      handlers.push(handler);
      return async () => undefined;
    },
    async sync() {
      if (failing) throw new Error("no LISTEN connection");
      return epoch;
    },
  };
  const read = async (tenantId: string, id: string): Promise<Resource> => {
    reads++;
    const row = rows.get(id);
    inRead?.();
    if (!row || row.tenantId !== tenantId) throw new NotFoundError("resource", id);
    return row;
  };
  const write = (version: number, announce = true): void => {
    rows.set(ID, { id: ID, tenantId: TENANT, version } as Resource);
    if (announce) for (const h of handlers) h(ID);
  };
  return {
    db,
    read,
    write,
    reads: () => reads,
    fail: (on: boolean) => (failing = on),
    reconnect: () => epoch++,
    duringRead: (fn: (() => void) | undefined) => (inRead = fn),
  };
}

async function following(w: ReturnType<typeof world>, max?: number): Promise<ResourceCache> {
  const cache = new ResourceCache(w.db, w.read, max);
  await cache.follow();
  return cache;
}

describe("ResourceCache", () => {
  it("answers a repeated read of an unchanged resource without reading it again", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    expect((await cache.get(TENANT, ID)).version).toBe(1);
    expect((await cache.get(TENANT, ID)).version).toBe(1);
    expect(w.reads()).toBe(1);
  });

  it("reads a resource again once its change is announced", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    await cache.get(TENANT, ID);
    w.write(2);
    expect((await cache.get(TENANT, ID)).version).toBe(2);
    expect(w.reads()).toBe(2);
  });

  it("does not keep a row whose change was announced while it was being read", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    // The read returns version 1; version 2 is committed and announced before it is kept.
    w.duringRead(() => w.write(2));
    expect((await cache.get(TENANT, ID)).version).toBe(1);
    w.duringRead(undefined);
    expect((await cache.get(TENANT, ID)).version).toBe(2);
    expect(cache.size).toBe(1);
  });

  it("answers another tenant's resource as not found, kept or not", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    await expect(cache.get(OTHER, ID)).rejects.toBeInstanceOf(NotFoundError);
    await cache.get(TENANT, ID);
    await expect(cache.get(OTHER, ID)).rejects.toBeInstanceOf(NotFoundError);
  });

  it("reads the database while the barrier fails, and forgets what it kept", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    await cache.get(TENANT, ID);
    w.fail(true);
    // A change whose announcement was lost with the connection.
    w.write(2, false);
    expect((await cache.get(TENANT, ID)).version).toBe(2);
    expect(cache.size).toBe(0);
    w.fail(false);
    w.reconnect();
    expect((await cache.get(TENANT, ID)).version).toBe(2);
    expect(w.reads()).toBe(3);
  });

  it("forgets everything when the LISTEN connection was opened again", async () => {
    const w = world();
    w.write(1);
    const cache = await following(w);
    await cache.get(TENANT, ID);
    w.write(2, false);
    w.reconnect();
    expect((await cache.get(TENANT, ID)).version).toBe(2);
  });

  it("keeps at most its maximum, the least recently read going first", async () => {
    const w = world();
    const ids = ["a", "b", "c"];
    const rows = new Map(ids.map((id) => [id, { id, tenantId: TENANT, version: 1 } as Resource]));
    let reads = 0;
    const cache = new ResourceCache(
      w.db,
      async (_t, id) => {
        reads++;
        return rows.get(id) as Resource;
      },
      2,
    );
    await cache.follow();
    await cache.get(TENANT, "a");
    await cache.get(TENANT, "b");
    await cache.get(TENANT, "a");
    await cache.get(TENANT, "c");
    expect(cache.size).toBe(2);
    await cache.get(TENANT, "a");
    expect(reads).toBe(3);
    await cache.get(TENANT, "b");
    expect(reads).toBe(4);
  });

  it("reads every time when not following", async () => {
    const w = world();
    w.write(1);
    const cache = new ResourceCache(w.db, w.read);
    await cache.get(TENANT, ID);
    await cache.get(TENANT, ID);
    expect(w.reads()).toBe(2);
  });
});
