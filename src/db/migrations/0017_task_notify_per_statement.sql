-- Task followers are woken once per statement, not once per row: a worker that starts 200 tasks
-- in one update sent 200 notifications (each a statement of its own inside the trigger); now it
-- sends one, whose payload lists the ids, comma-separated, at most 200 per notification (a
-- payload is limited to 8,000 bytes). Transition tables need a trigger per event.
DROP TRIGGER "tasks_notify" ON "task"."tasks";
--> statement-breakpoint
DROP FUNCTION "task"."notify_task"();
--> statement-breakpoint
CREATE FUNCTION "task"."notify_tasks"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_task', ids)
     FROM (SELECT string_agg(id::text, ',') AS ids
             FROM (SELECT id, (row_number() OVER () - 1) / 200 AS chunk FROM changed) AS numbered
            GROUP BY chunk) AS chunks;
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "tasks_notify_insert" AFTER INSERT ON "task"."tasks"
  REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION "task"."notify_tasks"();
--> statement-breakpoint
CREATE TRIGGER "tasks_notify_update" AFTER UPDATE ON "task"."tasks"
  REFERENCING NEW TABLE AS changed
  FOR EACH STATEMENT EXECUTE FUNCTION "task"."notify_tasks"();
