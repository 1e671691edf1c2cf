// A transaction's BEGIN, role switches and savepoints are sent ahead without waiting for their
// answer (src/db/pipeline.ts). These tests hold it to what a caller relies on: the statement after
// a switch runs in that role, a switch that fails is the error the transaction reports (even when
// only the COMMIT follows it), nothing of a failed transaction is kept, and a savepoint's rollback
// leaves the transaction usable again.
import { sql } from "drizzle-orm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, type TestDatabase } from "../../test/support/database.js";
import { actAs, asRole, ContextRole, sqlStateOf, withSavepoint, type Tx } from "./index.js";

/** PostgreSQL's "invalid_parameter_value": what `SET ROLE` of a role that does not exist answers. */
const NO_SUCH_ROLE = "22023";

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
  await t.admin.query("CREATE TABLE public.pipeline_probe (n int NOT NULL)");
  await t.admin.query("GRANT SELECT, INSERT ON public.pipeline_probe TO PUBLIC");
});
afterAll(async () => t.drop());

/** The messages of an error and of its causes, outermost first. */
function causes(err: unknown): string[] {
  const messages: string[] = [];
  for (let e = err; e instanceof Error; e = e.cause) messages.push(e.message);
  return messages;
}

async function probeRows(): Promise<number[]> {
  const rows = await t.admin.query<{ n: number }>("SELECT n FROM public.pipeline_probe ORDER BY n");
  return rows.map((r) => r.n);
}

async function write(tx: Tx, n: number): Promise<void> {
  await tx.execute(sql`INSERT INTO public.pipeline_probe (n) VALUES (${n})`);
}

async function currentUser(tx: Tx): Promise<string | undefined> {
  const result: unknown = await tx.execute(sql.raw("SELECT current_user AS role"));
  return (result as { rows: { role: string }[] }).rows[0]?.role;
}

describe("statements sent ahead in a transaction", () => {
  it("take effect before the statement that follows them", async () => {
    const seen = await t.db.transaction(async (tx) => {
      const roles: (string | undefined)[] = [];
      for (const role of [ContextRole.tenancy, ContextRole.inventory, ContextRole.task]) {
        await actAs(tx, role);
        roles.push(await currentUser(tx));
      }
      return roles;
    });
    expect(seen).toEqual(["dv_tenancy", "dv_inventory", "dv_task"]);
  });

  it("are bound to their statements: contexts sending at the same time each run as their own role", async () => {
    const roles = [
      ContextRole.tenancy,
      ContextRole.inventory,
      ContextRole.task,
      ContextRole.tenancy,
    ];
    const seen = await t.db.transaction((tx) =>
      Promise.all(
        roles.map((role) =>
          asRole(tx, role, async () => [await currentUser(tx), await currentUser(tx)]),
        ),
      ),
    );
    expect(seen).toEqual(roles.map((role) => [role, role]));
  });

  it("run a query built in a role and awaited after, as drizzle's lazy queries are, in that role", async () => {
    const result: unknown = await t.db.transaction((tx) =>
      asRole(tx, ContextRole.task, () => tx.execute(sql.raw("SELECT current_user AS role"))),
    );
    expect((result as { rows: { role: string }[] }).rows[0]?.role).toBe("dv_task");
  });

  it("switch again after a savepoint's rollback took the role back", async () => {
    const seen = await t.db.transaction(async (tx) => {
      await asRole(tx, ContextRole.tenancy, () => currentUser(tx));
      await withSavepoint(tx, (sp) =>
        asRole(sp, ContextRole.inventory, async () => {
          await currentUser(sp);
          throw new Error("undo");
        }),
      ).catch(() => undefined);
      // The rollback took the transaction back to dv_tenancy; the next inventory statement
      // must switch again rather than trust the switch the savepoint undid.
      return asRole(tx, ContextRole.inventory, () => currentUser(tx));
    });
    expect(seen).toBe("dv_inventory");
  });

  it("report their own failure, not the aborted transaction, from the next statement", async () => {
    const failure = await t.db
      .transaction(async (tx) => {
        await tx.execute(sql.raw("SET LOCAL ROLE dv_no_such_role"));
        await currentUser(tx);
      })
      .catch((err: unknown) => err);
    expect(sqlStateOf(failure)).toBe(NO_SUCH_ROLE);
    expect(causes(failure).join(" <- ")).toMatch(/role "dv_no_such_role" does not exist/);
  });

  it("fail the COMMIT when nothing else follows them, and nothing of the transaction is kept", async () => {
    const failure = await t.db
      .transaction(async (tx) => {
        await write(tx, 1);
        await tx.execute(sql.raw("SET LOCAL ROLE dv_no_such_role"));
      })
      .catch((err: unknown) => err);
    expect(sqlStateOf(failure)).toBe(NO_SUCH_ROLE);
    expect(await probeRows()).toEqual([]);
  });

  it("are undone with their savepoint, and the transaction goes on", async () => {
    const inner = await t.db.transaction(async (tx) => {
      await write(tx, 2);
      const undone = await withSavepoint(tx, async (sp) => {
        await write(sp, 3);
        await sp.execute(sql.raw("SET LOCAL ROLE dv_no_such_role"));
        await currentUser(sp);
      }).catch((err: unknown) => err);
      await write(tx, 4);
      return undone;
    });
    expect(sqlStateOf(inner)).toBe(NO_SUCH_ROLE);
    expect(await probeRows()).toEqual([2, 4]);
  });

  it("leave the connection clean for the next transaction after a failure", async () => {
    const single = await t.connect(1);
    await expect(
      single.transaction(async (tx) => {
        await tx.execute(sql.raw("SET LOCAL ROLE dv_no_such_role"));
      }),
    ).rejects.toSatisfy((err) => sqlStateOf(err) === NO_SUCH_ROLE);
    const role = await single.transaction(async (tx) => {
      await write(tx, 5);
      return currentUser(tx);
    });
    expect(role).toBe("dv_app");
    expect(await probeRows()).toEqual([2, 4, 5]);
  });
});
