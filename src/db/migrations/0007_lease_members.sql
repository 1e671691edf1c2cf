CREATE TABLE "runtime"."lease_members" (
	"holder" text PRIMARY KEY NOT NULL,
	"datacenter_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
