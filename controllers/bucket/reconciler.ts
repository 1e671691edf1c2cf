import type { Resource } from "../../src/contexts/inventory/index.js";
import type { Tx } from "../../src/db/index.js";
import { type KindPlan, ResourceReconciler, type StepSpec } from "../common/resource-reconciler.js";

interface BucketSpec {
  readonly quotaGiB: number;
  readonly versioning: boolean;
}

/** The capacity buckets draw on, per datacenter. */
export const BUCKET_CAPACITY = "objekt.storage_bytes";

/** Buckets (Objekt): reserve storage capacity for the quota, create the bucket, report its endpoint. */
export class BucketReconciler extends ResourceReconciler {
  readonly kind = "bucket" as const;

  protected async plan(tx: Tx, resource: Resource): Promise<KindPlan> {
    const spec = resource.spec as unknown as BucketSpec;
    const bytes = spec.quotaGiB * 1024 ** 3;
    await this.deps.services.inventory.reserveCapacity(tx, {
      datacenterId: resource.datacenterId,
      resource: BUCKET_CAPACITY,
      amount: bytes,
      owner: { kind: "bucket", id: resource.id },
    });
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

  protected teardown(): readonly (readonly StepSpec[])[] {
    return [[{ name: "main", service: "objekt", action: "delete_bucket", data: {} }]];
  }
}
