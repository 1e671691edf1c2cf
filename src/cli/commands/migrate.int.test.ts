import { readFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { runDv } from "../../../test/support/process.js";
import { TEST_DATABASE_URL } from "../../../test/support/services.js";
import { databaseUrl } from "../../../test/support/template.js";
import { migrationsFolder } from "../../db/index.js";

const name = `dv_test_cli_migrate_${process.pid}`;
const journal = JSON.parse(
  readFileSync(join(migrationsFolder(), "meta", "_journal.json"), "utf8"),
) as { entries: { tag: string }[] };
const total = journal.entries.length;
const latest = journal.entries.at(-1)?.tag ?? "";

async function admin(statement: string): Promise<void> {
  const client = new pg.Client(TEST_DATABASE_URL);
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

afterAll(() => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));

describe("dv migrate", () => {
  it("applies what is pending, once, and says so", async () => {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin(`CREATE DATABASE ${name}`);
    const env = { DATABASE_URL: databaseUrl(name) };
    const status = await runDv(["migrate", "--status"], env);
    expect(status).toMatchObject({
      code: 0,
      stdout: `127.0.0.1:${new URL(TEST_DATABASE_URL).port}/${name}: 0 of ${total} migrations applied; latest none\n`,
    });
    const first = await runDv(["migrate"], env);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(
      `${total} of ${total} migrations applied (${total} now); latest ${latest}`,
    );
    const second = await runDv(["migrate"], env);
    expect(second.stdout).toContain(`${total} of ${total} migrations applied (0 now)`);
  });

  it("fails in one line with a non-zero exit when the database is unreachable", async () => {
    const result = await runDv(["migrate"], { DATABASE_URL: "postgres://postgres@127.0.0.1:1/x" });
    expect(result.code).toBe(3);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("cannot reach PostgreSQL at 127.0.0.1:1/x (DATABASE_URL)");
  });
});
