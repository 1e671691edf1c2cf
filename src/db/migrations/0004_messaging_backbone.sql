CREATE SCHEMA "simulator";
--> statement-breakpoint
CREATE TABLE "runtime"."command_attempts" (
	"consumer" text NOT NULL,
	"message_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"code" text NOT NULL,
	"message" text NOT NULL,
	CONSTRAINT "command_attempts_pkey" PRIMARY KEY("consumer","message_id","attempt")
);
--> statement-breakpoint
CREATE TABLE "simulator"."devices" (
	"service" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"step" text NOT NULL,
	"generation" bigint NOT NULL,
	"state" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "devices_pkey" PRIMARY KEY("service","resource_id","step")
);
--> statement-breakpoint
CREATE TABLE "simulator"."effects" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "simulator"."effects_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"service" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"step" text NOT NULL,
	"operation" text NOT NULL,
	"message_id" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "simulator"."faults" (
	"service" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"mode" text NOT NULL,
	"remaining" integer,
	"step" text DEFAULT '' NOT NULL,
	"message" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "faults_pkey" PRIMARY KEY("service","resource_id","step")
);
--> statement-breakpoint
DROP INDEX "runtime"."outbox_pending";--> statement-breakpoint
ALTER TABLE "inventory"."network_pools" ADD COLUMN "is_default" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "runtime"."inbox" ADD COLUMN "outcome" jsonb;--> statement-breakpoint
CREATE INDEX "effects_message" ON "simulator"."effects" USING btree ("message_id");--> statement-breakpoint
CREATE INDEX "effects_resource" ON "simulator"."effects" USING btree ("resource_id");--> statement-breakpoint
CREATE INDEX "outbox_available" ON "runtime"."outbox" USING btree ("created_at");--> statement-breakpoint
ALTER TABLE "runtime"."outbox" DROP COLUMN "sent_at";