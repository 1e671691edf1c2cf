// The ceiling: what this PostgreSQL server commits per second when each transaction is shaped
// like one of ours — one insert, one update of the row, one commit (fsync on) — measured by
// pgbench on the same server, with the clients the dispatch benchmark uses. The summary reads
// items per second of the other benchmarks as a fraction of it.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../test/support/database.js";
import { databaseUrl } from "../test/support/template.js";
import { report } from "./support/report.js";
import { size } from "./support/scale.js";

const CLIENTS = 16;
const SECONDS = size(20, 3);

const SCRIPT = `BEGIN;
INSERT INTO bench_items (kind, payload, state) VALUES ('network', '{"name": "net", "spec": {"prefixLength": 28}}', 'created') RETURNING id \\gset
UPDATE bench_items SET state = 'succeeded', updated_at = now() WHERE id = :id;
COMMIT;
`;

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin.query(
    `CREATE TABLE public.bench_items (
       id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb NOT NULL, state text NOT NULL,
       created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
  );
});
afterAll(async () => t?.drop());

function pgbench(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn("pgbench", args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (out += c.toString()));
    child.once("error", (err) =>
      reject(
        new Error(
          `pgbench could not be started (${err.message}); it comes with the PostgreSQL client (apt-get install postgresql-client)`,
        ),
      ),
    );
    child.once("exit", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`pgbench exited ${code}:\n${out}`)),
    );
  });
}

describe("ceiling", () => {
  it(`pgbench, insert + update + commit, ${CLIENTS} clients, ${SECONDS} s`, async () => {
    const script = join(mkdtempSync(join(tmpdir(), "dv-pgbench-")), "ours.sql");
    writeFileSync(script, SCRIPT);
    const out = await pgbench([
      "--no-vacuum",
      `--client=${CLIENTS}`,
      "--jobs=2",
      `--time=${SECONDS}`,
      `--file=${script}`,
      databaseUrl(t.name),
    ]);
    const tps = Number(/^tps = ([\d.]+)/m.exec(out)?.[1]);
    const latency = Number(/^latency average = ([\d.]+) ms/m.exec(out)?.[1]);
    const [rows] = await t.admin.query<{ n: string }>("SELECT count(*) AS n FROM bench_items");
    // The transactions pgbench counted are rows in the table.
    expect(tps).toBeGreaterThan(0);
    expect(Number(rows?.n)).toBeGreaterThanOrEqual(Math.floor(tps * SECONDS * 0.9));
    report("ceiling", {
      "pgbench: insert + update + commit": [tps, "tx/s"],
      "pgbench: latency average": [latency, "ms"],
    });
  });
});
