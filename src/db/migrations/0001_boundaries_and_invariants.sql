-- Invariants drizzle's schema language cannot express, enforced by PostgreSQL itself, and the
-- bounded-context boundary: one role per context with rights on its own schema only.

CREATE EXTENSION IF NOT EXISTS btree_gist;
--> statement-breakpoint

-- Scarce resources: no two VLAN ranges of a datacenter overlap, no two IP pools of a datacenter
-- overlap, no two blocks (free or allocated) of an IP pool overlap.
ALTER TABLE "inventory"."vlan_ranges" ADD CONSTRAINT "vlan_ranges_no_overlap"
  EXCLUDE USING gist ("datacenter_id" WITH =, int4range("first", "last", '[]') WITH &&);
--> statement-breakpoint
ALTER TABLE "inventory"."ip_pools" ADD CONSTRAINT "ip_pools_no_overlap"
  EXCLUDE USING gist ("datacenter_id" WITH =, "cidr" inet_ops WITH &&);
--> statement-breakpoint
ALTER TABLE "inventory"."ip_blocks" ADD CONSTRAINT "ip_blocks_no_overlap"
  EXCLUDE USING gist ("pool_id" WITH =, "prefix" inet_ops WITH &&);
--> statement-breakpoint

-- A block lies inside its pool.
CREATE FUNCTION "inventory"."ip_block_within_pool"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM "inventory"."ip_pools" p WHERE p.id = NEW.pool_id AND NEW.prefix <<= p.cidr) THEN
    RAISE EXCEPTION 'ip block % is not inside its pool', NEW.prefix
      USING ERRCODE = 'check_violation', CONSTRAINT = 'ip_blocks_within_pool',
            SCHEMA = 'inventory', TABLE = 'ip_blocks';
  END IF;
  RETURN NEW;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "ip_blocks_within_pool" BEFORE INSERT OR UPDATE OF "prefix", "pool_id" ON "inventory"."ip_blocks"
  FOR EACH ROW EXECUTE FUNCTION "inventory"."ip_block_within_pool"();
--> statement-breakpoint

-- Audit records are append-only, for every role including the owner.
CREATE FUNCTION "audit"."refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit records are append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege', SCHEMA = 'audit', TABLE = 'records';
END
$$;
--> statement-breakpoint
CREATE TRIGGER "records_append_only" BEFORE UPDATE OR DELETE ON "audit"."records"
  FOR EACH ROW EXECUTE FUNCTION "audit"."refuse_change"();
--> statement-breakpoint
CREATE TRIGGER "records_no_truncate" BEFORE TRUNCATE ON "audit"."records"
  FOR EACH STATEMENT EXECUTE FUNCTION "audit"."refuse_change"();
--> statement-breakpoint

-- One role per context. Roles are global to the PostgreSQL cluster, so creating one that another
-- database of the cluster already created is not an error.
DO $$
DECLARE r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['dv_tenancy', 'dv_inventory', 'dv_task', 'dv_audit', 'dv_platform', 'dv_runtime'] LOOP
    BEGIN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      NULL;
    END;
  END LOOP;
END
$$;
--> statement-breakpoint
-- The application's login may act as each context (SET LOCAL ROLE), one at a time.
GRANT "dv_tenancy", "dv_inventory", "dv_task", "dv_audit", "dv_platform", "dv_runtime" TO CURRENT_USER;
--> statement-breakpoint

-- Each role reads and writes its own schema and nothing else.
DO $$
DECLARE ctx text;
BEGIN
  FOREACH ctx IN ARRAY ARRAY['tenancy', 'inventory', 'task', 'platform', 'runtime'] LOOP
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', ctx, 'dv_' || ctx);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I TO %I', ctx, 'dv_' || ctx);
    EXECUTE format('GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA %I TO %I', ctx, 'dv_' || ctx);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', ctx, 'dv_' || ctx);
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %I', ctx, 'dv_' || ctx);
  END LOOP;
END
$$;
--> statement-breakpoint
-- Audit: read and append, never change.
GRANT USAGE ON SCHEMA "audit" TO "dv_audit";
--> statement-breakpoint
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA "audit" TO "dv_audit";
--> statement-breakpoint
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA "audit" TO "dv_audit";
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA "audit" GRANT SELECT, INSERT ON TABLES TO "dv_audit";
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA "audit" GRANT USAGE, SELECT ON SEQUENCES TO "dv_audit";
