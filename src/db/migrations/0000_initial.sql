CREATE SCHEMA "audit";
--> statement-breakpoint
CREATE SCHEMA "inventory";
--> statement-breakpoint
CREATE SCHEMA "platform";
--> statement-breakpoint
CREATE SCHEMA "runtime";
--> statement-breakpoint
CREATE SCHEMA "task";
--> statement-breakpoint
CREATE SCHEMA "tenancy";
--> statement-breakpoint
CREATE TABLE "audit"."records" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "audit"."records_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"tenant_id" uuid,
	"datacenter_id" text NOT NULL,
	"action" text NOT NULL,
	"resource_kind" text NOT NULL,
	"resource_id" text NOT NULL,
	"before" jsonb,
	"after" jsonb,
	"correlation_id" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."capacity" (
	"datacenter_id" text NOT NULL,
	"resource" text NOT NULL,
	"total" bigint NOT NULL,
	"used" bigint DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "capacity_pkey" PRIMARY KEY("datacenter_id","resource"),
	CONSTRAINT "capacity_used_nonnegative" CHECK ("inventory"."capacity"."used" >= 0),
	CONSTRAINT "capacity_available_nonnegative" CHECK ("inventory"."capacity"."total" - "inventory"."capacity"."used" >= 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."capacity_reservations" (
	"owner_kind" text NOT NULL,
	"owner_id" uuid NOT NULL,
	"datacenter_id" text NOT NULL,
	"resource" text NOT NULL,
	"amount" bigint NOT NULL,
	"reserved_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "capacity_reservations_pkey" PRIMARY KEY("owner_id","datacenter_id","resource"),
	CONSTRAINT "capacity_reservations_amount_positive" CHECK ("inventory"."capacity_reservations"."amount" > 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."datacenters" (
	"name" text PRIMARY KEY NOT NULL,
	"display_name" text DEFAULT '' NOT NULL,
	"site" text NOT NULL,
	"failure_domain" text NOT NULL,
	"spec" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"generation" bigint DEFAULT 1 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."ip_blocks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"pool_id" uuid NOT NULL,
	"network_pool" text NOT NULL,
	"datacenter_id" text NOT NULL,
	"prefix" "cidr" NOT NULL,
	"prefix_length" integer GENERATED ALWAYS AS (masklen(prefix)) STORED NOT NULL,
	"owner_kind" text,
	"owner_id" uuid,
	"reserved_at" timestamp with time zone,
	CONSTRAINT "ip_blocks_owner_consistent" CHECK (("inventory"."ip_blocks"."owner_kind" IS NULL) = ("inventory"."ip_blocks"."owner_id" IS NULL) AND ("inventory"."ip_blocks"."owner_id" IS NULL) = ("inventory"."ip_blocks"."reserved_at" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "inventory"."ip_pools" (
	"id" uuid PRIMARY KEY NOT NULL,
	"network_pool" text NOT NULL,
	"datacenter_id" text NOT NULL,
	"cidr" "cidr" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."network_pools" (
	"name" text PRIMARY KEY NOT NULL,
	"datacenter_id" text NOT NULL,
	"generation" bigint DEFAULT 1 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."resources" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"tenant_id" uuid NOT NULL,
	"project_id" uuid NOT NULL,
	"environment_id" uuid NOT NULL,
	"datacenter_id" text NOT NULL,
	"name" text NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"spec" jsonb NOT NULL,
	"status" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"generation" bigint DEFAULT 1 NOT NULL,
	"observed_generation" bigint DEFAULT 0 NOT NULL,
	"deletion_requested_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "resources_environment_kind_name" UNIQUE("environment_id","kind","name"),
	CONSTRAINT "resources_kind" CHECK ("inventory"."resources"."kind" IN ('network', 'server', 'cluster', 'bucket'))
);
--> statement-breakpoint
CREATE TABLE "inventory"."server_pools" (
	"name" text PRIMARY KEY NOT NULL,
	"datacenter_id" text NOT NULL,
	"generation" bigint DEFAULT 1 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "inventory"."servers" (
	"id" uuid PRIMARY KEY NOT NULL,
	"pool" text NOT NULL,
	"datacenter_id" text NOT NULL,
	"name" text NOT NULL,
	"machine_class" text NOT NULL,
	"cpu_cores" integer NOT NULL,
	"memory_mib" integer NOT NULL,
	"spec" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"owner_kind" text,
	"owner_id" uuid,
	"reserved_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "servers_datacenter_name" UNIQUE("datacenter_id","name"),
	CONSTRAINT "servers_owner_consistent" CHECK (("inventory"."servers"."owner_kind" IS NULL) = ("inventory"."servers"."owner_id" IS NULL) AND ("inventory"."servers"."owner_id" IS NULL) = ("inventory"."servers"."reserved_at" IS NULL)),
	CONSTRAINT "servers_size_positive" CHECK ("inventory"."servers"."cpu_cores" > 0 AND "inventory"."servers"."memory_mib" > 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."vlan_ranges" (
	"id" uuid PRIMARY KEY NOT NULL,
	"network_pool" text NOT NULL,
	"datacenter_id" text NOT NULL,
	"first" integer NOT NULL,
	"last" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "vlan_ranges_bounds" CHECK (1 <= "inventory"."vlan_ranges"."first" AND "inventory"."vlan_ranges"."first" <= "inventory"."vlan_ranges"."last" AND "inventory"."vlan_ranges"."last" <= 4094)
);
--> statement-breakpoint
CREATE TABLE "inventory"."vlans" (
	"datacenter_id" text NOT NULL,
	"vlan_id" integer NOT NULL,
	"range_id" uuid NOT NULL,
	"network_pool" text NOT NULL,
	"owner_kind" text,
	"owner_id" uuid,
	"reserved_at" timestamp with time zone,
	CONSTRAINT "vlans_pkey" PRIMARY KEY("datacenter_id","vlan_id"),
	CONSTRAINT "vlans_owner_consistent" CHECK (("inventory"."vlans"."owner_kind" IS NULL) = ("inventory"."vlans"."owner_id" IS NULL) AND ("inventory"."vlans"."owner_id" IS NULL) = ("inventory"."vlans"."reserved_at" IS NULL)),
	CONSTRAINT "vlans_id_range" CHECK ("inventory"."vlans"."vlan_id" BETWEEN 1 AND 4094)
);
--> statement-breakpoint
CREATE TABLE "platform"."objects" (
	"kind" text NOT NULL,
	"name" text NOT NULL,
	"generation" bigint NOT NULL,
	"spec" jsonb NOT NULL,
	"status" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"observed_generation" bigint DEFAULT 0 NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "objects_pkey" PRIMARY KEY("kind","name")
);
--> statement-breakpoint
CREATE TABLE "runtime"."dead_letters" (
	"id" uuid PRIMARY KEY NOT NULL,
	"message_id" text NOT NULL,
	"subject" text NOT NULL,
	"service" text NOT NULL,
	"type" text NOT NULL,
	"envelope" jsonb NOT NULL,
	"errors" jsonb NOT NULL,
	"delivery_count" integer NOT NULL,
	"reason" text NOT NULL,
	"correlation_id" text NOT NULL,
	"causation_id" text,
	"task_id" uuid,
	"state" text DEFAULT 'open' NOT NULL,
	"resolved_at" timestamp with time zone,
	"resolved_by" text,
	"replay_message_id" text,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dead_letters_state" CHECK ("runtime"."dead_letters"."state" IN ('open', 'replayed', 'discarded'))
);
--> statement-breakpoint
CREATE TABLE "runtime"."inbox" (
	"consumer" text NOT NULL,
	"message_id" text NOT NULL,
	"handled_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "inbox_pkey" PRIMARY KEY("consumer","message_id")
);
--> statement-breakpoint
CREATE TABLE "runtime"."leases" (
	"shard" integer PRIMARY KEY NOT NULL,
	"holder" text,
	"fencing_token" bigint DEFAULT 0 NOT NULL,
	"acquired_at" timestamp with time zone,
	"renewed_at" timestamp with time zone,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "runtime"."outbox" (
	"id" uuid PRIMARY KEY NOT NULL,
	"subject" text NOT NULL,
	"envelope" jsonb NOT NULL,
	"headers" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"sent_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text
);
--> statement-breakpoint
CREATE TABLE "task"."task_events" (
	"task_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"verb" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text NOT NULL,
	"message" text DEFAULT '' NOT NULL,
	"percent" integer,
	CONSTRAINT "task_events_pkey" PRIMARY KEY("task_id","seq"),
	CONSTRAINT "task_events_verb" CHECK ("task"."task_events"."verb" IN ('created', 'queued', 'started', 'progress', 'succeeded', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE TABLE "task"."tasks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid,
	"project_id" uuid,
	"environment_id" uuid,
	"datacenter_id" text NOT NULL,
	"operation" text NOT NULL,
	"resource_kind" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"state" text NOT NULL,
	"progress_percent" integer DEFAULT 0 NOT NULL,
	"progress_message" text DEFAULT '' NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"actor" text NOT NULL,
	"correlation_id" text NOT NULL,
	"finished_at" timestamp with time zone,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tasks_state" CHECK ("task"."tasks"."state" IN ('created', 'queued', 'started', 'succeeded', 'failed', 'cancelled')),
	CONSTRAINT "tasks_progress_range" CHECK ("task"."tasks"."progress_percent" BETWEEN 0 AND 100),
	CONSTRAINT "tasks_finished_when_terminal" CHECK (("task"."tasks"."finished_at" IS NOT NULL) = ("task"."tasks"."state" IN ('succeeded', 'failed', 'cancelled')))
);
--> statement-breakpoint
CREATE TABLE "tenancy"."environments" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"project_id" uuid NOT NULL,
	"name" text NOT NULL,
	"datacenter_id" text NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "environments_project_name" UNIQUE("project_id","name"),
	CONSTRAINT "environments_name_dns_label" CHECK ("tenancy"."environments"."name" ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
);
--> statement-breakpoint
CREATE TABLE "tenancy"."projects" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" uuid NOT NULL,
	"name" text NOT NULL,
	"display_name" text DEFAULT '' NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "projects_tenant_name" UNIQUE("tenant_id","name"),
	CONSTRAINT "projects_name_dns_label" CHECK ("tenancy"."projects"."name" ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
);
--> statement-breakpoint
CREATE TABLE "tenancy"."tenants" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"display_name" text DEFAULT '' NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenants_name_unique" UNIQUE("name"),
	CONSTRAINT "tenants_name_dns_label" CHECK ("tenancy"."tenants"."name" ~ '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$')
);
--> statement-breakpoint
ALTER TABLE "inventory"."ip_blocks" ADD CONSTRAINT "ip_blocks_pool_id_ip_pools_id_fk" FOREIGN KEY ("pool_id") REFERENCES "inventory"."ip_pools"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."ip_pools" ADD CONSTRAINT "ip_pools_network_pool_network_pools_name_fk" FOREIGN KEY ("network_pool") REFERENCES "inventory"."network_pools"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."network_pools" ADD CONSTRAINT "network_pools_datacenter_id_datacenters_name_fk" FOREIGN KEY ("datacenter_id") REFERENCES "inventory"."datacenters"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."server_pools" ADD CONSTRAINT "server_pools_datacenter_id_datacenters_name_fk" FOREIGN KEY ("datacenter_id") REFERENCES "inventory"."datacenters"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."servers" ADD CONSTRAINT "servers_pool_server_pools_name_fk" FOREIGN KEY ("pool") REFERENCES "inventory"."server_pools"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."vlan_ranges" ADD CONSTRAINT "vlan_ranges_network_pool_network_pools_name_fk" FOREIGN KEY ("network_pool") REFERENCES "inventory"."network_pools"("name") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inventory"."vlans" ADD CONSTRAINT "vlans_range_id_vlan_ranges_id_fk" FOREIGN KEY ("range_id") REFERENCES "inventory"."vlan_ranges"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "task"."task_events" ADD CONSTRAINT "task_events_task_id_tasks_id_fk" FOREIGN KEY ("task_id") REFERENCES "task"."tasks"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tenancy"."environments" ADD CONSTRAINT "environments_project_id_projects_id_fk" FOREIGN KEY ("project_id") REFERENCES "tenancy"."projects"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tenancy"."projects" ADD CONSTRAINT "projects_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "tenancy"."tenants"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "records_resource" ON "audit"."records" USING btree ("resource_kind","resource_id","at");--> statement-breakpoint
CREATE INDEX "records_tenant_at" ON "audit"."records" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "records_actor_at" ON "audit"."records" USING btree ("actor","at");--> statement-breakpoint
CREATE INDEX "ip_blocks_free" ON "inventory"."ip_blocks" USING btree ("network_pool","prefix_length") WHERE "inventory"."ip_blocks"."owner_id" IS NULL;--> statement-breakpoint
CREATE INDEX "ip_blocks_owner" ON "inventory"."ip_blocks" USING btree ("owner_id");--> statement-breakpoint
CREATE INDEX "resources_tenant" ON "inventory"."resources" USING btree ("tenant_id","kind","created_at");--> statement-breakpoint
CREATE INDEX "servers_free" ON "inventory"."servers" USING btree ("pool","machine_class","name") WHERE "inventory"."servers"."owner_id" IS NULL;--> statement-breakpoint
CREATE INDEX "servers_owner" ON "inventory"."servers" USING btree ("owner_id");--> statement-breakpoint
CREATE INDEX "vlans_free" ON "inventory"."vlans" USING btree ("network_pool","vlan_id") WHERE "inventory"."vlans"."owner_id" IS NULL;--> statement-breakpoint
CREATE INDEX "vlans_owner" ON "inventory"."vlans" USING btree ("owner_id");--> statement-breakpoint
CREATE INDEX "dead_letters_open" ON "runtime"."dead_letters" USING btree ("service","created_at") WHERE "runtime"."dead_letters"."state" = 'open';--> statement-breakpoint
CREATE INDEX "outbox_pending" ON "runtime"."outbox" USING btree ("created_at") WHERE "runtime"."outbox"."sent_at" IS NULL;--> statement-breakpoint
CREATE INDEX "tasks_tenant_created" ON "task"."tasks" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "tasks_resource" ON "task"."tasks" USING btree ("resource_id","created_at");--> statement-breakpoint
CREATE INDEX "tasks_open" ON "task"."tasks" USING btree ("state") WHERE "task"."tasks"."state" IN ('created', 'queued', 'started');