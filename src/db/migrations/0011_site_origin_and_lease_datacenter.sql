ALTER TABLE "runtime"."leases" ADD COLUMN "datacenter_id" text;--> statement-breakpoint
ALTER TABLE "runtime"."outbox" ADD COLUMN "origin" text;