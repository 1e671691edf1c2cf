// Scenario if-match: 16 clients (8 in --quick) do read-modify-write of one bucket through the
// API process at the same time: each reads the bucket, adds one to a counter label, and sends
// the PATCH with If-Match; a 412 means re-read and retry, as docs/api.md says. A controller and
// the objekt worker reconcile the bucket meanwhile (their status writes move its version too).
// Checked: every acknowledged (202) update survived — the counter equals the number of 202s, no
// two 202s wrote the same value (a lost update), and the bucket's version moved at least once per
// acknowledged update.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { benchKey } from "../bench/support/dv.js";
import { type Plane, startPlane } from "../test/support/plane.js";
import { record, size } from "./support/report.js";

const CLIENTS = size(16, 8);
const UPDATES_EACH = size(25, 8);

let p: Plane;
beforeAll(async () => {
  p = await startPlane({ relay: false });
});
afterAll(async () => p.close());

describe("concurrent If-Match updates of one resource", () => {
  it("lose no acknowledged update", async () => {
    const key = await benchKey();
    const api = await p.spawn(["api"], { ...key.env, DV_API_RATE_LIMIT: "1000000" });
    await p.spawn(["controller"]);
    await p.spawn(["worker", "--service", "objekt"]);
    const token = await key.token("tenant-admin", p.path.tenant);
    const base = `http://127.0.0.1:${api.port}/api/v1/tenants/${p.path.tenant}/projects/${p.path.project}/environments/${p.path.environment}/buckets`;
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const created = await fetch(base, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "contended", spec: { quotaGiB: 1 }, labels: { count: "0" } }),
    });
    expect(created.status).toBe(202);
    const url = `${base}/contended`;
    const read = async () => {
      const r = await fetch(url, { headers });
      const body = (await r.json()) as { metadata: { labels: Record<string, string> } };
      return { etag: r.headers.get("etag") ?? "", count: Number(body.metadata.labels.count) };
    };
    const versionOf = (etag: string) => Number(etag.replaceAll('"', ""));
    const startVersion = versionOf((await read()).etag);

    const written: number[] = [];
    let conflicts = 0;
    const other: number[] = [];
    await Promise.all(
      Array.from({ length: CLIENTS }, async () => {
        for (let done = 0; done < UPDATES_EACH;) {
          const { etag, count } = await read();
          const r = await fetch(url, {
            method: "PATCH",
            headers: { ...headers, "if-match": etag },
            body: JSON.stringify({ labels: { count: String(count + 1) } }),
          });
          await r.body?.cancel();
          if (r.status === 202) {
            written.push(count + 1);
            done++;
          } else if (r.status === 412) conflicts++;
          else other.push(r.status);
        }
      }),
    );
    const final = await read();
    const lostUpdates = written.length - final.count;
    const sameValueTwice = written.length - new Set(written).size;
    const versionMoves = versionOf(final.etag) - startVersion;
    record({
      scenario: "if-match",
      faults: 0,
      operations: written.length + conflicts,
      lost: Math.max(0, lostUpdates),
      duplicated: sameValueTwice,
      violations: other.length + (versionMoves < written.length ? 1 : 0),
      figures: {
        acknowledged: written.length,
        conflicts_412: conflicts,
        final_count: final.count,
        version_moves: versionMoves,
      },
    });
    expect(other).toEqual([]);
    expect(written).toHaveLength(CLIENTS * UPDATES_EACH);
    expect(final.count).toBe(written.length);
    expect(sameValueTwice).toBe(0);
    expect(versionMoves).toBeGreaterThanOrEqual(written.length);
    // The clients did contend: some of their writes were refused as stale.
    expect(conflicts).toBeGreaterThan(0);
  });
});
