DROP INDEX "runtime"."outbox_available";--> statement-breakpoint
ALTER TABLE "runtime"."outbox" ADD COLUMN "available_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
CREATE INDEX "outbox_available" ON "runtime"."outbox" USING btree ("available_at","created_at");