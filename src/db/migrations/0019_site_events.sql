-- Events of another site wake the controllers over PostgreSQL (ADR 0007). A worker in dc2 writes
-- its outcome to the shared database and its events to its own site's JetStream, which the
-- controllers in dc1 do not read: they learned of the outcome only at their next resync (35 s on
-- average with the default minute). Now every insert into the outbox also notifies
-- `dv_site_event` with the resources its events name, per datacenter of origin:
-- `<origin> <kind>:<id>,<kind>:<id>,…` (at most 100 keys per notification; a payload is limited
-- to 8,000 bytes). A controller ignores its own datacenter's, which reach it over JetStream.
-- Commands and rows without an origin notify nothing.
CREATE OR REPLACE FUNCTION "runtime"."notify_outbox"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_outbox', '');
  PERFORM pg_notify('dv_site_event', origin || ' ' || keys)
     FROM (SELECT origin, string_agg(key, ',') AS keys
             FROM (SELECT origin, key, (row_number() OVER (PARTITION BY origin) - 1) / 100 AS chunk
                     FROM (SELECT DISTINCT i.origin,
                                  (i.envelope -> 'data' ->> 'resource_kind') || ':' ||
                                  (i.envelope -> 'data' ->> 'resource_id') AS key
                             FROM inserted i
                            WHERE i.origin IS NOT NULL
                              AND i.subject NOT LIKE 'dv.%.cmd.%'
                              AND i.envelope -> 'data' ? 'resource_kind'
                              AND i.envelope -> 'data' ? 'resource_id') AS named) AS numbered
            GROUP BY origin, chunk) AS chunks;
  RETURN NULL;
END
$$;
--> statement-breakpoint
DROP TRIGGER "outbox_notify" ON "runtime"."outbox";
--> statement-breakpoint
CREATE TRIGGER "outbox_notify" AFTER INSERT ON "runtime"."outbox"
  REFERENCING NEW TABLE AS inserted
  FOR EACH STATEMENT EXECUTE FUNCTION "runtime"."notify_outbox"();
--> statement-breakpoint
-- A command the relay could not deliver the first time (its site unreachable over the site link,
-- or NATS down) wakes its resource's reconcilers (dv_intent), so that the resource and its task
-- say what they wait for at once (`Undelivered`) instead of at the next resync or re-dispatch
-- deadline (a minute each by default).
CREATE FUNCTION "runtime"."notify_undelivered"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_intent',
    (NEW.envelope -> 'data' ->> 'resource_kind') || ':' || (NEW.envelope -> 'data' ->> 'resource_id'));
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "outbox_undelivered" AFTER UPDATE OF "attempts" ON "runtime"."outbox"
  FOR EACH ROW
  WHEN (OLD.attempts = 0 AND NEW.attempts > 0 AND NEW.published_at IS NULL
        AND NEW.subject LIKE 'dv.%.cmd.%'
        AND NEW.envelope -> 'data' ? 'resource_kind' AND NEW.envelope -> 'data' ? 'resource_id')
  EXECUTE FUNCTION "runtime"."notify_undelivered"();
