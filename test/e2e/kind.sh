#!/usr/bin/env bash
# End to end on a real cluster: kind, the image built from this checkout, the Helm chart, the
# sample platform configuration, and a tenant's journey through the API until a network is Ready.
#
#   bash test/e2e/kind.sh
#
# Exit codes: 0 the journey passed; 1 it failed (the script prints pods, events and logs first);
# 2 it cannot run on this machine: no usable container engine (docker or podman), reported in one
# line on stderr. A 2 is never a pass.
#
# Environment:
#   KEEP_CLUSTER=1        keep the cluster (and reuse it on the next run) instead of deleting it
#   KIND_CLUSTER          cluster name (dataverket-e2e)
#   KIND_NODE_IMAGE       node image (kind's default for the pinned version)
#   E2E_NAMESPACE         namespace of the release, PostgreSQL and NATS (dataverket-e2e)
#   E2E_API_PORT          local port of the API port-forward (18080)
#   E2E_TIMEOUT           seconds to wait for each step (300)
#   E2E_HELM_ARGS         extra arguments for helm upgrade --install, e.g. "--set logLevel=debug"
#
# Tools: kind is built with `go install` into .cache/bin (pinned), kubectl comes from
# hack/kube.sh install, helm from hack/helm.sh; the container engine must already work.
set -euo pipefail

ME="test/e2e/kind.sh"
E2E_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$E2E_DIR/../.." && pwd)"

# --- A container engine, or one line and exit 2 -------------------------------------------------
ENGINE=""
why=""
for candidate in docker podman; do
  if ! command -v "$candidate" >/dev/null 2>&1; then continue; fi
  if timeout 30 "$candidate" info >/dev/null 2>&1; then ENGINE=$candidate; break; fi
  why="${why:+$why, }$candidate is on PATH but '$candidate info' fails (no daemon or no permission)"
done
if [ -z "$ENGINE" ]; then
  printf '%s: no container engine (docker or podman) on this machine%s; kind cannot run here\n' \
    "$ME" "${why:+: $why}" >&2
  exit 2
fi

# shellcheck source-path=SCRIPTDIR source=../../hack/lib.sh
source "$ROOT/hack/lib.sh"

KIND_VERSION="v0.33.0"
CLUSTER="${KIND_CLUSTER:-dataverket-e2e}"
NS="${E2E_NAMESPACE:-dataverket-e2e}"
API_PORT="${E2E_API_PORT:-18080}"
TIMEOUT="${E2E_TIMEOUT:-300}"
IMAGE_REPO="localhost/dataverket"
IMAGE_TAG="e2e"
RELEASE="dv"
WORK="$CACHE/e2e"
KCFG="$WORK/kubeconfig"
KIND="$BIN/kind"
KUBECTL="$BIN/kubectl"
PLATFORM_KINDS=(datacenters serverpools networkpools machineclasses platformpolicies recoverypolicies)
mkdir -p "$WORK"
PF_PID=""

say() { printf '%s: %s\n' "$ME" "$*" >&2; }
die() { printf '%s: error: %s\n' "$ME" "$*" >&2; exit 1; }
k() { "$KUBECTL" --kubeconfig "$KCFG" "$@"; }
# kind shells out to docker or podman; KIND_EXPERIMENTAL_PROVIDER picks podman.
kind_() { KIND_EXPERIMENTAL_PROVIDER="$ENGINE" "$KIND" "$@"; }

# --- Clean up, and say what went wrong ---------------------------------------------------------
diagnose() {
  [ -f "$KCFG" ] || return 0
  say "diagnostics: pods, events and logs of namespace $NS"
  k -n "$NS" get pods -o wide >&2 || true
  k -n "$NS" get events --sort-by=.lastTimestamp 2>/dev/null | tail -40 >&2 || true
  local pod
  for pod in $(k -n "$NS" get pods -l "app.kubernetes.io/instance=$RELEASE" -o name 2>/dev/null); do
    echo "--- $pod" >&2
    k -n "$NS" logs "$pod" --all-containers --tail=40 >&2 2>&1 || true
  done
  k get "$(IFS=,; echo "${PLATFORM_KINDS[*]}")" -o wide >&2 2>&1 || true
}

cleanup() {
  local rc=$?
  if [ -n "$PF_PID" ]; then kill "$PF_PID" 2>/dev/null || true; fi
  [ "$rc" -ne 0 ] && diagnose
  if [ "${KEEP_CLUSTER:-0}" = "1" ]; then
    say "keeping cluster $CLUSTER (KEEP_CLUSTER=1): export KUBECONFIG=$KCFG"
  elif kind_ get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    say "deleting cluster $CLUSTER"
    kind_ delete cluster --name "$CLUSTER" --kubeconfig "$KCFG" >&2 || true
  fi
  if [ "$rc" -eq 0 ]; then say "PASS"; else say "FAIL (exit $rc)"; fi
  exit "$rc"
}
trap cleanup EXIT

# --- Tools -------------------------------------------------------------------------------------
install_kind() {
  if [ -x "$KIND" ] && [ "$("$KIND" version 2>/dev/null | awk '{print $2}')" = "$KIND_VERSION" ]; then return 0; fi
  command -v go >/dev/null 2>&1 || die "installing kind $KIND_VERSION needs a Go toolchain"
  say "building kind $KIND_VERSION with go install (once per machine)"
  GOBIN="$BIN" GOFLAGS="-buildvcs=false" CGO_ENABLED=0 go install "sigs.k8s.io/kind@$KIND_VERSION" >&2 \
    || die "go install sigs.k8s.io/kind@$KIND_VERSION failed"
}

install_kind
bash "$ROOT/hack/kube.sh" install # the pinned kubectl (built from source once per machine)
HELM=$(bash "$ROOT/hack/helm.sh" path)
command -v curl >/dev/null 2>&1 || die "curl is needed"

# --- Cluster -----------------------------------------------------------------------------------
if kind_ get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "reusing cluster $CLUSTER"
  kind_ export kubeconfig --name "$CLUSTER" --kubeconfig "$KCFG" >&2
else
  say "creating cluster $CLUSTER with kind $KIND_VERSION"
  kind_ create cluster --name "$CLUSTER" --kubeconfig "$KCFG" --wait "${TIMEOUT}s" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} >&2
fi
chmod 600 "$KCFG"

# --- Image -------------------------------------------------------------------------------------
say "building image $IMAGE_REPO:$IMAGE_TAG with $ENGINE"
"$ENGINE" build -t "$IMAGE_REPO:$IMAGE_TAG" "$ROOT" >&2
say "loading the image into the cluster"
if [ "$ENGINE" = docker ]; then
  kind_ load docker-image "$IMAGE_REPO:$IMAGE_TAG" --name "$CLUSTER" >&2
else
  "$ENGINE" save -o "$WORK/image.tar" "$IMAGE_REPO:$IMAGE_TAG"
  kind_ load image-archive "$WORK/image.tar" --name "$CLUSTER" >&2
  rm -f "$WORK/image.tar"
fi

# --- PostgreSQL, NATS, Secrets -----------------------------------------------------------------
k create namespace "$NS" --dry-run=client -o yaml | k apply -f - >/dev/null
say "installing PostgreSQL and NATS in $NS"
k -n "$NS" apply -k "$E2E_DIR/manifests" >&2
k -n "$NS" rollout status deployment/postgres --timeout="${TIMEOUT}s" >&2
k -n "$NS" rollout status deployment/nats --timeout="${TIMEOUT}s" >&2

k -n "$NS" create secret generic dataverket-database \
  --from-literal=url="postgres://dataverket:dataverket-e2e@postgres:5432/dataverket" \
  --dry-run=client -o yaml | k apply -f - >/dev/null

# A signing key for the test's tokens (the dev key format of `dv token create`) and its public
# half for the API (DV_AUTH_PUBLIC_KEY_FILE). Kept with the cluster so a reused one still works.
KEY="$WORK/dev-key.json"
PEM="$WORK/public.pem"
if [ ! -f "$KEY" ] || [ ! -f "$PEM" ]; then
  (cd "$ROOT" && node --input-type=module -e '
import { writeFileSync } from "node:fs";
import { calculateJwkThumbprint, exportJWK, exportSPKI, generateKeyPair } from "jose";
const [keyFile, pemFile] = process.argv.slice(1);
const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
const privateJwk = await exportJWK(privateKey);
const kid = await calculateJwkThumbprint(privateJwk);
const stored = { kid, alg: "ES256", privateJwk: { ...privateJwk, kid, alg: "ES256" } };
writeFileSync(keyFile, JSON.stringify(stored, null, 2) + "\n", { mode: 0o600 });
writeFileSync(pemFile, await exportSPKI(publicKey));
' "$KEY" "$PEM") || die "could not make the test signing key"
fi
k -n "$NS" create secret generic dataverket-auth --from-file=public.pem="$PEM" \
  --dry-run=client -o yaml | k apply -f - >/dev/null

# --- The chart ---------------------------------------------------------------------------------
# Some kindnet versions apply NetworkPolicies to the kubelet's probes (kind#3875): allow the node
# network, read from the engine's "kind" network.
if [ "$ENGINE" = docker ]; then subnets='{{range .IPAM.Config}}{{.Subnet}} {{end}}'; else subnets='{{range .Subnets}}{{.Subnet}} {{end}}'; fi
kubelet_from=""
for cidr in $("$ENGINE" network inspect kind -f "$subnets" 2>/dev/null || true); do
  kubelet_from+="${kubelet_from:+,}{\"ipBlock\":{\"cidr\":\"$cidr\"}}"
done
kubelet_from="[$kubelet_from]"

say "installing the chart (release $RELEASE in $NS)"
# shellcheck disable=SC2086 # E2E_HELM_ARGS is split on purpose
"$HELM" --kubeconfig "$KCFG" upgrade --install "$RELEASE" "$ROOT/charts/dataverket" \
  --namespace "$NS" \
  --set image.repository="$IMAGE_REPO" \
  --set image.tag="$IMAGE_TAG" \
  --set image.pullPolicy=Never \
  --set nats.url=nats://nats:4222 \
  --set datacenterId=dc1 \
  --set-json "networkPolicy.kubelet.from=$kubelet_from" \
  --wait --timeout "${TIMEOUT}s" ${E2E_HELM_ARGS:-} >&2

for kind in "${PLATFORM_KINDS[@]}"; do
  k get crd "$kind.platform.dataverket.io" >/dev/null || die "the chart did not install CRD $kind.platform.dataverket.io"
done

# --- Platform configuration --------------------------------------------------------------------
say "applying config/samples and waiting for every sample to be Ready"
k apply -k "$ROOT/config/samples" >&2
for kind in "${PLATFORM_KINDS[@]}"; do
  if [ -n "$(k get "$kind.platform.dataverket.io" -o name)" ]; then
    k wait --for=condition=Ready --timeout="${TIMEOUT}s" "$kind.platform.dataverket.io" --all >&2
  fi
done
k get "$(IFS=,; echo "${PLATFORM_KINDS[*]/%/.platform.dataverket.io}")" >&2

# --- The tenant's journey through the API ------------------------------------------------------
say "port-forwarding the API to 127.0.0.1:$API_PORT"
k -n "$NS" port-forward "service/$RELEASE-dataverket-api" "$API_PORT:8080" >"$WORK/port-forward.log" 2>&1 &
PF_PID=$!
wait_port "$API_PORT" 30 || die "port-forward to the API did not open; see $WORK/port-forward.log"
API="http://127.0.0.1:$API_PORT/api/v1"

dv() { (cd "$ROOT" && DV_AUTH_DEV_KEY_FILE="$KEY" node bin/dv.js "$@"); }
# Prints field $2 (a dotted path; [n] for list items) of JSON file $1, empty when absent.
field() {
  node -e '
const v = process.argv[2].split(".").reduce((o, k) => (o == null ? o : o[k]), JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")));
if (v !== undefined && v !== null) process.stdout.write(typeof v === "object" ? JSON.stringify(v) : String(v));
' "$1" "$2"
}
# request EXPECTED-STATUS METHOD PATH TOKEN [JSON-BODY]: the response body lands in $WORK/body.json.
request() {
  local want=$1 method=$2 path=$3 token=$4 body=${5:-} status
  local args=(-sS -o "$WORK/body.json" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H 'content-type: application/json' -H "Idempotency-Key: e2e-$RUN-$((++REQUESTS))" -d "$body")
  status=$(curl "${args[@]}" "$API$path") || die "$method $path: curl failed"
  [ "$status" = "$want" ] || die "$method $path answered $status, not $want: $(cat "$WORK/body.json")"
}

RUN=$(date +%s)
REQUESTS=0
TENANT="e2e-$RUN"
OPERATOR=$(dv token create --role operator --subject e2e --ttl 1h)
request 201 POST /tenants "$OPERATOR" "{\"name\":\"$TENANT\",\"displayName\":\"End to end $RUN\"}"
ADMIN=$(dv token create --role tenant-admin --tenant "$TENANT" --subject e2e-admin --ttl 1h)
request 201 POST "/tenants/$TENANT/projects" "$ADMIN" '{"name":"web"}'
request 201 POST "/tenants/$TENANT/projects/web/environments" "$ADMIN" '{"name":"prod","datacenter":"dc1"}'
request 202 POST "/tenants/$TENANT/projects/web/environments/prod/networks" "$ADMIN" \
  '{"name":"frontend","spec":{"prefixLength":26}}'
TASK=$(field "$WORK/body.json" id)
[ -n "$TASK" ] || die "creating the network answered no task: $(cat "$WORK/body.json")"
say "tenant $TENANT: network frontend requested, task $TASK"

NETWORK="/tenants/$TENANT/projects/web/environments/prod/networks/frontend"
deadline=$((SECONDS + TIMEOUT))
while :; do
  request 200 GET "/tenants/$TENANT/tasks/$TASK" "$ADMIN"
  state=$(field "$WORK/body.json" state)
  case $state in
    succeeded) break ;;
    failed | cancelled) die "task $TASK ended $state: $(field "$WORK/body.json" reason)" ;;
  esac
  [ "$SECONDS" -lt "$deadline" ] || die "task $TASK is still $state after ${TIMEOUT}s"
  sleep 2
done
while :; do
  request 200 GET "$NETWORK" "$ADMIN"
  ready=$(node -e '
const n = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const c = (n.status?.conditions ?? []).find((c) => c.type === "Ready");
process.stdout.write(c?.status ?? "");' "$WORK/body.json")
  [ "$ready" = "True" ] && break
  [ "$SECONDS" -lt "$deadline" ] || die "network frontend is not Ready after ${TIMEOUT}s: $(cat "$WORK/body.json")"
  sleep 2
done
say "network frontend is Ready: vlan $(field "$WORK/body.json" status.vlanId), cidr $(field "$WORK/body.json" status.cidr)"
