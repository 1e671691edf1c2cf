CREATE TABLE "inventory"."quota_defaults" (
	"quota" text PRIMARY KEY NOT NULL,
	"limit" bigint NOT NULL,
	"policy" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quota_defaults_limit_nonnegative" CHECK ("inventory"."quota_defaults"."limit" >= 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."quota_overrides" (
	"tenant_id" uuid NOT NULL,
	"quota" text NOT NULL,
	"scope" text NOT NULL,
	"limit" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "quota_overrides_pkey" PRIMARY KEY("tenant_id","quota","scope"),
	CONSTRAINT "quota_overrides_limit_nonnegative" CHECK ("inventory"."quota_overrides"."limit" >= 0)
);
--> statement-breakpoint
CREATE TABLE "inventory"."quota_usage" (
	"tenant_id" uuid NOT NULL,
	"quota" text NOT NULL,
	"scope" text NOT NULL,
	"used" bigint NOT NULL,
	CONSTRAINT "quota_usage_pkey" PRIMARY KEY("tenant_id","quota","scope"),
	CONSTRAINT "quota_usage_used_nonnegative" CHECK ("inventory"."quota_usage"."used" >= 0)
);
--> statement-breakpoint
-- What every tenant already holds, charged once: the same demand src/contexts/inventory/quotas.ts
-- computes for a request (a resource being deleted still holds what it was granted).
INSERT INTO "inventory"."quota_usage" ("tenant_id", "quota", "scope", "used")
SELECT "tenant_id", "quota", "scope", sum("amount") FROM (
  SELECT r."tenant_id", d."quota", d."scope", d."amount"
  FROM "inventory"."resources" r
  CROSS JOIN LATERAL (VALUES
    ('vlans', r."datacenter_id", CASE WHEN r."kind" IN ('network', 'cluster') THEN 1::bigint END),
    ('addresses', r."datacenter_id", CASE WHEN r."kind" IN ('network', 'cluster')
      THEN 1::bigint << (32 - COALESCE((r."spec"->>'prefixLength')::int, 24)) END),
    ('servers', r."spec"->>'machineClass', CASE r."kind" WHEN 'server' THEN 1::bigint
      WHEN 'cluster' THEN COALESCE((r."spec"->>'workers')::bigint, 3) + 1 END),
    ('clusters', '*', CASE WHEN r."kind" = 'cluster' THEN 1::bigint END),
    ('buckets', '*', CASE WHEN r."kind" = 'bucket' THEN 1::bigint END),
    ('bucketStorageGiB', '*', CASE WHEN r."kind" = 'bucket' THEN (r."spec"->>'quotaGiB')::bigint END),
    (r."kind" || 'sPerEnvironment', r."environment_id"::text, 1::bigint)
  ) AS d("quota", "scope", "amount")
  WHERE d."amount" IS NOT NULL AND d."scope" IS NOT NULL
  UNION ALL
  SELECT e."tenant_id", 'environments', '*', 1::bigint FROM "tenancy"."environments" e
) charged
GROUP BY "tenant_id", "quota", "scope";
