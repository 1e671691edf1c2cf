-- The relay's claim of due outbox rows, as a function so that it is always an index scan in the
-- order of "outbox_due". Publishing a row updates "published_at", which leaves the row's old entry
-- in "outbox_due" until a vacuum. The planner, counting only live rows, chose a bitmap scan and a
-- sort; a bitmap scan visits every heap page those dead entries point to on every claim, and never
-- marks them dead: in a burst of 2,000 networks a claim read ~3,000 of them (~500 pages, 3 ms), 38 %
-- of the database's time. A plain index scan stops after the rows it needs and marks the entries
-- of rows dead to everyone, so the next claim skips them.
-- PL/pgSQL keeps the query's plan for the session, so a relay plans its claim once, not once
-- per claim.
CREATE FUNCTION "runtime"."claim_outbox"(max_rows integer, relay_origin text)
RETURNS TABLE (id uuid, subject text, payload text, datacenter_id text, headers jsonb, attempts integer)
LANGUAGE plpgsql
SET enable_bitmapscan = off
SET enable_seqscan = off
AS $$
BEGIN
  RETURN QUERY
  SELECT o.id, o.subject, o.envelope::text, o.envelope ->> 'datacenter_id', o.headers, o.attempts
    FROM "runtime"."outbox" o
   WHERE o.published_at IS NULL
     AND o.available_at <= now()
     AND (relay_origin IS NULL OR o.origin IS NULL OR o.origin = relay_origin)
   ORDER BY o.available_at, o.created_at
   LIMIT max_rows
     FOR UPDATE OF o SKIP LOCKED;
END
$$;
