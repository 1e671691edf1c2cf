CREATE TABLE "runtime"."backups" (
	"id" uuid PRIMARY KEY NOT NULL,
	"state" text DEFAULT 'running' NOT NULL,
	"format" text NOT NULL,
	"actor" text NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	"bytes" bigint,
	"sha256" text,
	"latest_migration" text,
	"error" text,
	CONSTRAINT "backups_state" CHECK ("runtime"."backups"."state" IN ('running', 'succeeded', 'failed'))
);
--> statement-breakpoint
CREATE TABLE "runtime"."restores" (
	"id" uuid PRIMARY KEY NOT NULL,
	"restored_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"format" text NOT NULL,
	"bytes" bigint NOT NULL,
	"sha256" text NOT NULL,
	"backup_id" uuid,
	"backup_taken_at" timestamp with time zone,
	"duration_ms" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "task"."tasks" ADD COLUMN "traceparent" text;--> statement-breakpoint
CREATE INDEX "backups_started" ON "runtime"."backups" USING btree ("started_at");