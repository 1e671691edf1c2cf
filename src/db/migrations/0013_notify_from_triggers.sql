-- Listeners are woken by the database itself: every insert into the outbox notifies dv_outbox
-- once per statement, and every new or changed task notifies dv_task with its id. Before, each
-- enqueue and each task write sent its own SELECT pg_notify(...), a round trip of its own.
-- Notifications are delivered at commit, and identical ones of a transaction only once.
CREATE FUNCTION "runtime"."notify_outbox"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_outbox', '');
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "outbox_notify" AFTER INSERT ON "runtime"."outbox"
  FOR EACH STATEMENT EXECUTE FUNCTION "runtime"."notify_outbox"();
--> statement-breakpoint
CREATE FUNCTION "task"."notify_task"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('dv_task', NEW.id::text);
  RETURN NULL;
END
$$;
--> statement-breakpoint
CREATE TRIGGER "tasks_notify" AFTER INSERT OR UPDATE ON "task"."tasks"
  FOR EACH ROW EXECUTE FUNCTION "task"."notify_task"();
