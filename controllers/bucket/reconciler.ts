import { BucketSpec } from "../../src/contexts/inventory/index.js";
import type { StepSpec } from "../common/commands.js";
import type { KindPlan, PassContext } from "../common/pass.js";
import { specOf } from "../common/spec.js";
import { ResourceReconciler } from "../common/resource-reconciler.js";

/** The capacity buckets draw on, per datacenter. */
export const BUCKET_CAPACITY = "objekt.storage_bytes";

/** Buckets (Objekt): reserve storage capacity for the quota, create the bucket, report its endpoint. */
export class BucketReconciler extends ResourceReconciler {
  readonly kind = "bucket" as const;

  async plan({ resource, allocate }: PassContext): Promise<KindPlan> {
    const spec = specOf(BucketSpec, resource);
    const bytes = spec.quotaGiB * 1024 ** 3;
    await allocate.capacity(BUCKET_CAPACITY, bytes);
    return {
      phases: [
        [
          {
            name: "main",
            service: "objekt",
            action: "create_bucket",
            data: { quota_bytes: bytes, versioning: spec.versioning },
          },
        ],
      ],
      observed: (steps) => ({
        quotaBytes: bytes,
        endpoint: steps.main?.state === "done" ? (steps.main.result?.endpoint ?? null) : null,
      }),
    };
  }

  teardown(): readonly (readonly StepSpec[])[] {
    return [[{ name: "main", service: "objekt", action: "delete_bucket", data: {} }]];
  }
}
