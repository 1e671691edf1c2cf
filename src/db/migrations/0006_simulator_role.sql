-- The simulated domain services' schema gets its own role, like every context.
DO $$
BEGIN
  CREATE ROLE dv_simulator NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
  NULL;
END
$$;
--> statement-breakpoint
GRANT "dv_simulator" TO CURRENT_USER;
--> statement-breakpoint
GRANT USAGE ON SCHEMA "simulator" TO "dv_simulator";
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "simulator" TO "dv_simulator";
--> statement-breakpoint
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA "simulator" TO "dv_simulator";
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA "simulator" GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO "dv_simulator";
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA "simulator" GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO "dv_simulator";
