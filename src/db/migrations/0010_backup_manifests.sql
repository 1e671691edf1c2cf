ALTER TABLE "runtime"."backups" ADD COLUMN "scope" text DEFAULT 'database' NOT NULL;--> statement-breakpoint
ALTER TABLE "runtime"."backups" ADD COLUMN "data_as_of" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "runtime"."backups" ADD COLUMN "tables" jsonb;--> statement-breakpoint
ALTER TABLE "runtime"."backups" ADD COLUMN "server_version" text;--> statement-breakpoint
ALTER TABLE "runtime"."restores" ADD COLUMN "scope" text DEFAULT 'database' NOT NULL;--> statement-breakpoint
ALTER TABLE "runtime"."restores" ADD COLUMN "violations" jsonb DEFAULT '[]'::jsonb NOT NULL;