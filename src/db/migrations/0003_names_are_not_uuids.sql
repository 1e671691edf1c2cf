-- Paths of the API accept a name or an id in the same place; a name shaped like a UUID would be
-- ambiguous, so the database refuses one.
ALTER TABLE "tenancy"."tenants" ADD CONSTRAINT "tenants_name_not_uuid"
  CHECK ("name" !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
--> statement-breakpoint
ALTER TABLE "tenancy"."projects" ADD CONSTRAINT "projects_name_not_uuid"
  CHECK ("name" !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
--> statement-breakpoint
ALTER TABLE "tenancy"."environments" ADD CONSTRAINT "environments_name_not_uuid"
  CHECK ("name" !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
--> statement-breakpoint
ALTER TABLE "inventory"."resources" ADD CONSTRAINT "resources_name_not_uuid"
  CHECK ("name" !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$');
--> statement-breakpoint
ALTER TABLE "inventory"."resources" ADD CONSTRAINT "resources_name_dns_label"
  CHECK ("name" ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$');
