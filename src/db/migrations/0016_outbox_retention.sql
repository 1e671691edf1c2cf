DROP INDEX "runtime"."outbox_available";--> statement-breakpoint
ALTER TABLE "runtime"."outbox" ADD COLUMN "published_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "outbox_due" ON "runtime"."outbox" USING btree ("available_at","created_at") WHERE "runtime"."outbox"."published_at" IS NULL;--> statement-breakpoint
CREATE INDEX "outbox_published" ON "runtime"."outbox" USING btree ("published_at") WHERE "runtime"."outbox"."published_at" IS NOT NULL;