CREATE TABLE "runtime"."idempotency_keys" (
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status_code" integer NOT NULL,
	"body" jsonb NOT NULL,
	"location" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY("scope","key")
);
--> statement-breakpoint
ALTER TABLE "task"."tasks" ADD COLUMN "resource_generation" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "idempotency_keys_expiry" ON "runtime"."idempotency_keys" USING btree ("expires_at");