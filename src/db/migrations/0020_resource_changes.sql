-- Every change of a tenant resource's row is announced on `dv_resource` with the ids changed
-- (at most 200 per notification: a payload is limited to 8,000 bytes), when the transaction
-- commits. An API process keeps the rows it served in memory and forgets each one announced
-- here; together with a barrier on its LISTEN connection (a notification of its own, which
-- PostgreSQL delivers after every notification of a transaction committed before it) a `GET`
-- answers from memory what a read would have answered. Inserts announce nothing: a row that did
-- not exist was not kept. Two triggers, because a trigger with a transition table has one event.
CREATE FUNCTION "inventory"."notify_resource_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_resource', string_agg(id::text, ','))
     FROM (SELECT id, (row_number() OVER () - 1) / 200 AS chunk FROM changed) AS numbered
    GROUP BY chunk;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "resources_updated" AFTER UPDATE ON "inventory"."resources"
  REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION "inventory"."notify_resource_change"();
--> statement-breakpoint
CREATE TRIGGER "resources_deleted" AFTER DELETE ON "inventory"."resources"
  REFERENCING OLD TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION "inventory"."notify_resource_change"();
