-- Custom SQL migration file, put your migrate code below! --
-- Capacity usage follows its reservations, applied at commit. A reservation row is written at
-- once; the datacenter's `capacity` row is updated by a deferred constraint trigger just before
-- the transaction commits, so the one hot row per datacenter and resource is locked for the
-- commit only, not for the rest of a reconcile pass. The check constraint
-- capacity_available_nonnegative still refuses a commit that would overdraw the capacity.
CREATE FUNCTION "inventory"."apply_capacity_reservation"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    UPDATE "inventory"."capacity"
       SET "used" = "used" + NEW."amount", "version" = "version" + 1, "updated_at" = now()
     WHERE "datacenter_id" = NEW."datacenter_id" AND "resource" = NEW."resource"
       AND "total" - "used" >= NEW."amount";
    IF NOT FOUND THEN
      RAISE EXCEPTION 'capacity % of datacenter % is exhausted: % requested, less is available',
          NEW."resource", NEW."datacenter_id", NEW."amount"
        USING ERRCODE = 'check_violation', CONSTRAINT = 'capacity_available_nonnegative',
              SCHEMA = 'inventory', TABLE = 'capacity';
    END IF;
  ELSE
    UPDATE "inventory"."capacity"
       SET "used" = "used" - OLD."amount", "version" = "version" + 1, "updated_at" = now()
     WHERE "datacenter_id" = OLD."datacenter_id" AND "resource" = OLD."resource";
  END IF;
  RETURN NULL;
END
$$;
--> statement-breakpoint
-- The transaction's role at commit may be any context's; the function runs as the inventory role.
ALTER FUNCTION "inventory"."apply_capacity_reservation"() OWNER TO "dv_inventory";
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER "capacity_reservations_apply"
  AFTER INSERT OR DELETE ON "inventory"."capacity_reservations"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "inventory"."apply_capacity_reservation"();
--> statement-breakpoint
-- Reservations made before this migration are already counted in "used"; nothing to move.
