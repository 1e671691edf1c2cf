// The bounded-context boundary, enforced where PostgreSQL can: a role per context with rights on
// its own schema only, no foreign key across schemas (none into inventory above all), and no
// module that touches another context's tables. Each test fails when a migration or a module
// breaks the rule.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { packageRoot } from "../meta/index.js";
import { actAs, ContextRole, SqlState, sqlStateOf, withSavepoint } from "./index.js";

const CONTEXTS = [
  "tenancy",
  "inventory",
  "task",
  "audit",
  "platform",
  "runtime",
  "simulator",
] as const;

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

describe("context roles", () => {
  it("may write exactly their own schema (audit: append only) and read no other", async () => {
    const rows = await t.admin.query<{
      schema: string;
      table: string;
      role: string;
      sel: boolean;
      ins: boolean;
      upd: boolean;
      del: boolean;
    }>(
      `SELECT n.nspname AS schema, c.relname AS "table", r.rolname AS role,
              has_table_privilege(r.oid, c.oid, 'SELECT') AS sel,
              has_table_privilege(r.oid, c.oid, 'INSERT') AS ins,
              has_table_privilege(r.oid, c.oid, 'UPDATE') AS upd,
              has_table_privilege(r.oid, c.oid, 'DELETE') AS del
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         CROSS JOIN pg_roles r
        WHERE c.relkind = 'r' AND n.nspname = ANY($1) AND r.rolname = ANY($2)`,
      [CONTEXTS, CONTEXTS.map((c) => `dv_${c}`)],
    );
    expect(rows.length).toBeGreaterThan(CONTEXTS.length * 6);
    const wrong = rows.filter((r) => {
      const own = r.role === `dv_${r.schema}`;
      const expected = own
        ? { sel: true, ins: true, upd: r.schema !== "audit", del: r.schema !== "audit" }
        : { sel: false, ins: false, upd: false, del: false };
      return (
        r.sel !== expected.sel ||
        r.ins !== expected.ins ||
        r.upd !== expected.upd ||
        r.del !== expected.del
      );
    });
    expect(wrong).toEqual([]);
  });

  it("are refused by PostgreSQL when one writes another's table", async () => {
    await expect(
      t.db.transaction(async (tx) => {
        await tx.execute(sql.raw("SET LOCAL ROLE dv_tenancy"));
        await tx.execute(
          sql.raw(
            "INSERT INTO inventory.datacenters (name, site, failure_domain) VALUES ('x', 's', 'f')",
          ),
        );
      }),
    ).rejects.toSatisfy((err) => sqlStateOf(err) === SqlState.InsufficientPrivilege);
  });

  it("hold across savepoints, whether they are released or rolled back", async () => {
    const roles = await t.db.transaction(async (tx) => {
      const current = async (): Promise<string | undefined> => {
        const result: unknown = await tx.execute(sql.raw("SELECT current_user AS role"));
        return (result as { rows: { role: string }[] }).rows[0]?.role;
      };
      const seen: (string | undefined)[] = [];
      await actAs(tx, ContextRole.tenancy);
      await withSavepoint(tx, (sp) => actAs(sp, ContextRole.inventory));
      await actAs(tx, ContextRole.tenancy);
      seen.push(await current());
      await withSavepoint(tx, async (sp) => {
        await actAs(sp, ContextRole.task);
        throw new Error("undo");
      }).catch(() => undefined);
      await actAs(tx, ContextRole.task);
      seen.push(await current());
      return seen;
    });
    expect(roles).toEqual(["dv_tenancy", "dv_task"]);
  });

  it("leave the application login no rights of its own: it must act as a context", async () => {
    await expect(t.db.query("SELECT * FROM tenancy.tenants")).rejects.toSatisfy(
      (err) => sqlStateOf(err) === SqlState.InsufficientPrivilege,
    );
  });
});

describe("schema boundaries", () => {
  it("have no foreign key from one context's schema into another's", async () => {
    const crossing = await t.admin.query<{ constraint: string; from: string; to: string }>(
      `SELECT con.conname AS constraint, fn.nspname || '.' || fc.relname AS "from", tn.nspname || '.' || tc.relname AS "to"
         FROM pg_constraint con
         JOIN pg_class fc ON fc.oid = con.conrelid JOIN pg_namespace fn ON fn.oid = fc.relnamespace
         JOIN pg_class tc ON tc.oid = con.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
        WHERE con.contype = 'f' AND fn.nspname <> tn.nspname`,
    );
    expect(crossing).toEqual([]);
  });

  it("keep every module to its own context's tables", async () => {
    const tables = await t.admin.query<{ schema: string; table: string }>(
      `SELECT schemaname AS schema, tablename AS "table" FROM pg_tables WHERE schemaname = ANY($1)`,
      [CONTEXTS],
    );
    const dirOf = (ctx: string) =>
      join(packageRoot(), "src", ctx === "simulator" ? "simulator" : `contexts/${ctx}`);
    const violations: string[] = [];
    for (const ctx of CONTEXTS) {
      for (const file of readdirSync(dirOf(ctx)).filter((f) => f.endsWith(".ts"))) {
        const text = readFileSync(join(dirOf(ctx), file), "utf8");
        for (const other of CONTEXTS.filter((c) => c !== ctx)) {
          if (text.includes(`from "../${other}/`))
            violations.push(`${ctx}/${file} imports the ${other} module's internals`);
        }
        for (const { schema, table } of tables.filter((x) => x.schema !== ctx)) {
          const mention = new RegExp(`\\b"?${schema}"?\\."?${table}\\b`);
          if (mention.test(text)) violations.push(`${ctx}/${file} names ${schema}.${table}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });
});
