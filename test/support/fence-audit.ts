// Test-only instrumentation of a test database: every status write of a tenant resource is
// recorded with the fence it was made under (the `dv.fence` setting the fence check leaves in the
// transaction), and every lease grant with the moment its row lock was obtained. From those two
// records a test proves that no write was accepted from a replica whose shard had moved on.
import type { Database } from "../../src/db/index.js";

/** Installs the audit tables and triggers (as the superuser). */
export async function installFenceAudit(admin: Database): Promise<void> {
  await admin.query(`
    CREATE TABLE IF NOT EXISTS public.write_audit (
      id bigserial PRIMARY KEY, resource_id uuid NOT NULL, fence text, at timestamptz NOT NULL DEFAULT clock_timestamp());
    CREATE TABLE IF NOT EXISTS public.grant_audit (
      shard int NOT NULL, token bigint NOT NULL, holder text, acquired_at timestamptz);
    -- A batch's fence names every grant it holds (holder/shard/token,…) and the shard count
    -- (dv.shards); the write is recorded with the grant of its own row's shard.
    CREATE OR REPLACE FUNCTION public.audit_write() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    DECLARE
      fence text := current_setting('dv.fence', true);
      shards int := nullif(current_setting('dv.shards', true), '')::int;
      mine text;
    BEGIN
      IF fence IS NOT NULL AND fence <> '' AND shards IS NOT NULL THEN
        SELECT g INTO mine FROM unnest(string_to_array(fence, ',')) AS g
         WHERE split_part(g, '/', 2)::int =
               ('x' || right(replace(NEW.id::text, '-', ''), 8))::bit(32)::bigint % shards;
        fence := coalesce(mine, 'unfenced-shard');
      END IF;
      INSERT INTO public.write_audit (resource_id, fence) VALUES (NEW.id, fence);
      RETURN NEW;
    END $$;
    CREATE OR REPLACE FUNCTION public.audit_grant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
    BEGIN
      INSERT INTO public.grant_audit (shard, token, holder, acquired_at) VALUES (NEW.shard, NEW.fencing_token, NEW.holder, NEW.acquired_at);
      RETURN NEW;
    END $$;
    DROP TRIGGER IF EXISTS audit_write ON inventory.resources;
    CREATE TRIGGER audit_write AFTER UPDATE ON inventory.resources FOR EACH ROW EXECUTE FUNCTION public.audit_write();
    DROP TRIGGER IF EXISTS audit_grant ON runtime.leases;
    CREATE TRIGGER audit_grant AFTER UPDATE OF fencing_token ON runtime.leases FOR EACH ROW
      WHEN (NEW.fencing_token <> OLD.fencing_token) EXECUTE FUNCTION public.audit_grant();
  `);
}

/**
 * Fenced writes accepted after a later grant of their shard took the lease: each one is a write
 * by a replica that no longer owned the shard. Must be empty.
 */
export async function staleWrites(
  admin: Database,
): Promise<{ resource_id: string; fence: string; at: string; overtaken_at: string }[]> {
  return admin.query(`
    WITH writes AS (
      SELECT w.resource_id, w.fence, w.at,
             split_part(w.fence, '/', 2)::int AS shard, split_part(w.fence, '/', 3)::bigint AS token
        FROM public.write_audit w WHERE w.fence IS NOT NULL AND w.fence <> '' AND w.fence <> 'unfenced-shard')
    SELECT writes.resource_id::text, writes.fence, writes.at::text, g.acquired_at::text AS overtaken_at
      FROM writes JOIN public.grant_audit g ON g.shard = writes.shard AND g.token > writes.token AND g.acquired_at <= writes.at
    UNION ALL
    -- A write in a fenced batch for a row of a shard the batch held no grant of.
    SELECT w.resource_id::text, w.fence, w.at::text, NULL
      FROM public.write_audit w WHERE w.fence = 'unfenced-shard'`);
}

/** How many fenced writes were recorded (so a test can show it looked at some). */
export async function fencedWrites(admin: Database): Promise<number> {
  const [row] = await admin.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM public.write_audit WHERE fence IS NOT NULL AND fence <> ''`,
  );
  return row?.n ?? 0;
}
