#!/usr/bin/env bash
# Starts or stops every real service the tests use: PostgreSQL, nats-server, a Kubernetes
# control plane (etcd and kube-apiserver, hack/kube.sh), and Jaeger to receive traces.
#
#   hack/services.sh up      install what is missing and start what is not running; prints the
#                            names of the services this call started, one per line
#   hack/services.sh down [name…]   stop the named services (all when none is named)
#   hack/services.sh env     print the environment the test suite uses to find them
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERVICES=(postgres nats kube jaeger)

case "${1:-}" in
  up)
    for s in "${SERVICES[@]}"; do
      if ! "$HACK_DIR/$s.sh" status; then
        "$HACK_DIR/$s.sh" start
        echo "$s"
      fi
    done
    ;;
  down)
    shift
    names=("$@"); [ ${#names[@]} -eq 0 ] && names=("${SERVICES[@]}")
    for s in "${names[@]}"; do "$HACK_DIR/$s.sh" stop; done
    ;;
  env)
    echo "DV_TEST_DATABASE_URL=$("$HACK_DIR/postgres.sh" url)"
    echo "DV_TEST_NATS_URL=$("$HACK_DIR/nats.sh" url)"
    echo "DV_TEST_KUBECONFIG=$("$HACK_DIR/kube.sh" kubeconfig)"
    echo "DV_TEST_OTLP_ENDPOINT=$("$HACK_DIR/jaeger.sh" url)"
    echo "DV_TEST_JAEGER_QUERY=$("$HACK_DIR/jaeger.sh" query)"
    ;;
  *) echo "usage: $0 up|down [name…]|env" >&2; exit 2 ;;
esac
