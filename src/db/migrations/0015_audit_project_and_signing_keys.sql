CREATE TABLE "runtime"."signing_keys" (
	"name" text PRIMARY KEY NOT NULL,
	"secret" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "audit"."records" ADD COLUMN "project_id" uuid;--> statement-breakpoint
CREATE INDEX "records_tenant_project" ON "audit"."records" USING btree ("tenant_id","project_id","id");