import { resolve } from "node:path";

// Where the integration tier finds the services hack/services.sh started. The defaults match the
// hack scripts; DV_TEST_PG_PORT and DV_TEST_NATS_PORT move both together.

const pgPort = process.env.DV_TEST_PG_PORT ?? "25432";
const natsPort = process.env.DV_TEST_NATS_PORT ?? "24222";

/** Superuser URL of the test PostgreSQL server (trust authentication on loopback). */
export const TEST_DATABASE_URL = `postgres://postgres@127.0.0.1:${pgPort}/postgres`;

/** Client URL of the test nats-server. */
export const TEST_NATS_URL = `nats://127.0.0.1:${natsPort}`;

/** Kubeconfig of the test kube-apiserver (admin token), written by hack/kube.sh. */
export const TEST_KUBECONFIG = resolve(import.meta.dirname, "../../.cache/kube/kubeconfig");

/** The pinned kubectl hack/kube.sh builds. */
export const TEST_KUBECTL = resolve(import.meta.dirname, "../../.cache/bin/kubectl");

/** OTLP/HTTP endpoint of the test Jaeger (hack/jaeger.sh), for OTEL_EXPORTER_OTLP_ENDPOINT. */
export const TEST_OTLP_ENDPOINT = `http://127.0.0.1:${process.env.DV_TEST_OTLP_PORT ?? "24318"}`;

/** Query API of the test Jaeger: `GET /api/traces/{traceId}`. */
export const TEST_JAEGER_QUERY = `http://127.0.0.1:${process.env.DV_TEST_JAEGER_PORT ?? "26686"}`;
