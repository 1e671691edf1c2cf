#!/usr/bin/env bash
# A private Kubernetes control plane for integration tests, like kubebuilder's envtest: a real
# etcd and a real kube-apiserver on loopback, plus kubectl. No kubelet, scheduler or
# controller-manager: objects are stored, validated and served, but nothing reconciles them.
#
# The binaries are pinned releases built from their Go modules into .cache/bin (once per machine:
# Go's module and build caches keep later rebuilds short). Neither builds with a plain
# `go install pkg@version`, because both modules' go.mod files `replace` sibling modules with
# local paths; so we write a throwaway build module under .cache/build/ that requires the release
# and replaces each of those siblings with its published version, read from the release's go.mod.
#
#   hack/kube.sh install        build etcd, kube-apiserver and kubectl when missing or not the pinned version
#   hack/kube.sh start          install, then start etcd on 127.0.0.1:${DV_TEST_ETCD_PORT:-22379} and
#                               kube-apiserver on https://127.0.0.1:${DV_TEST_KUBE_PORT:-26443}; waits for
#                               /readyz and writes the kubeconfig (no-op when running)
#   hack/kube.sh stop           stop both (no-op when stopped)
#   hack/kube.sh status         exit 0 when the apiserver answers /readyz
#   hack/kube.sh url            print the apiserver URL
#   hack/kube.sh kubeconfig     print the path of the kubeconfig (admin token, group system:masters)
#   hack/kube.sh kubectl ARG…   run the pinned kubectl against this apiserver
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KUBE_VERSION="v1.37.2"
ETCD_VERSION="v3.7.3" # the etcd line Kubernetes $KUBE_VERSION ships and tests with (build/dependencies.yaml)
PORT="${DV_TEST_KUBE_PORT:-26443}"
ETCD_PORT="${DV_TEST_ETCD_PORT:-22379}"
ETCD_PEER_PORT="${DV_TEST_ETCD_PEER_PORT:-22380}"
KROOT="$CACHE/kube"
PKI="$KROOT/pki"
ETCD_DATA="$KROOT/etcd"
KUBECONFIG_FILE="$KROOT/kubeconfig"
ETCD_PID="$KROOT/etcd.pid"
APISERVER_PID="$KROOT/kube-apiserver.pid"
ETCD_LOG="$CACHE/log/etcd.log"
APISERVER_LOG="$CACHE/log/kube-apiserver.log"
BUILD="$CACHE/build"

version_of() {
  case "$(basename "$1")" in
    etcd) "$1" --version 2>/dev/null | awk '/^etcd Version:/ {print "v" $3}' ;;
    kube-apiserver) "$1" --version 2>/dev/null | awk '{print $2}' ;;
    kubectl) "$1" version --client 2>/dev/null | awk '/^Client Version:/ {print $3}' ;;
  esac
}

# Writes a build module in $1 that requires $2 at $3 and replaces every sibling module that $2's
# go.mod replaces with a local path (and requires) by its published version: $4 with the sibling's
# minor and patch, e.g. v0 turns Kubernetes v1.37.2 into the staging modules' v0.37.2.
write_build_module() {
  local dir=$1 mod=$2 version=$3 major=$4
  local gomod; gomod=$(cd "$BUILD" && GOFLAGS=-mod=mod go list -m -f '{{.GoMod}}' "$mod@$version") || die "cannot resolve $mod@$version"
  [ -f "$gomod" ] || die "no go.mod for $mod@$version"
  local sibling_version="$major.${version#v*.}"
  local go_line; go_line=$(awk '$1 == "go" {print $2; exit}' "$gomod")
  local replaced required
  # Modules its go.mod replaces with a path inside its own repository (./staging/…, ../api, …).
  replaced=$(awk '
    /^replace[ \t]*\(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    { line = $0; sub(/^replace[ \t]+/, "", line) }
    (block || /^replace[ \t]/) && line ~ /=>[ \t]*\.\.?\// && line !~ /FORBIDDEN/ { split(line, f); print f[1] }
  ' "$gomod" | sort -u)
  # Modules it requires: a replacement for anything else would be ignored, and some of those
  # (k8s.io/sample-controller, …) are not published.
  required=$(awk '
    /^require[ \t]*\(/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block { print $1 }
    /^require[ \t]+[^(]/ { print $2 }
  ' "$gomod" | sort -u)
  mkdir -p "$dir"
  {
    echo "// Written by hack/kube.sh to build $mod $version; edits are overwritten."
    echo "module dataverket.local/build/$(basename "$dir")"
    echo
    echo "go ${go_line:-1.22}"
    echo
    echo "require $mod $version"
    echo
    echo "replace ("
    comm -12 <(echo "$replaced") <(echo "$required") | while read -r sibling; do
      [ -n "$sibling" ] && printf '\t%s => %s %s\n' "$sibling" "$sibling" "$sibling_version"
    done
    echo ")"
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
}

# Builds package $3 of the build module in $1 into $BIN/$2 with extra -ldflags $4.
go_build() {
  local dir=$1 name=$2 pkg=$3 ldflags=$4 started=$SECONDS
  say "building $name (once per machine; minutes on 2 cores)"
  (cd "$dir" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod" \
    nice -n 10 go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$name.tmp" "$pkg") >&2 \
    || { rm -f "$BIN/$name.tmp"; die "go build $pkg failed (build module: $dir)"; }
  mv -f "$BIN/$name.tmp" "$BIN/$name"
  say "built $name $(version_of "$BIN/$name") in $((SECONDS - started))s"
}

# -X flags that make Kubernetes binaries report $KUBE_VERSION, as its own build (hack/lib/version.sh) does.
kube_ldflags() {
  local v=${KUBE_VERSION#v} date
  date=$(cd "$BUILD" && GOFLAGS=-mod=mod go list -m -f '{{if .Time}}{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}{{end}}' "k8s.io/kubernetes@$KUBE_VERSION" 2>/dev/null || true)
  local pkg flags=()
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    flags+=("-X $pkg.gitVersion=$KUBE_VERSION" "-X $pkg.gitMajor=${v%%.*}" "-X $pkg.gitMinor=$(echo "$v" | cut -d. -f2)"
      "-X $pkg.gitTreeState=clean" "-X $pkg.gitCommit=" "-X $pkg.buildDate=${date:-1970-01-01T00:00:00Z}")
  done
  echo "${flags[*]}"
}

cmd_install() {
  local need=()
  [ "$(version_of "$BIN/etcd")" = "$ETCD_VERSION" ] || need+=(etcd)
  [ "$(version_of "$BIN/kube-apiserver")" = "$KUBE_VERSION" ] || need+=(kube-apiserver)
  [ "$(version_of "$BIN/kubectl")" = "$KUBE_VERSION" ] || need+=(kubectl)
  [ ${#need[@]} -eq 0 ] && return 0
  command -v go >/dev/null 2>&1 || die "building ${need[*]} needs a Go toolchain, and there is none on PATH"
  mkdir -p "$BUILD"
  # One build at a time, even across concurrent callers: each takes both cores and gigabytes.
  exec 9>"$BUILD/.lock"
  flock 9
  local name
  for name in "${need[@]}"; do
    case $name in
      etcd)
        [ "$(version_of "$BIN/etcd")" = "$ETCD_VERSION" ] && continue
        write_build_module "$BUILD/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "${ETCD_VERSION%%.*}"
        go_build "$BUILD/etcd" etcd go.etcd.io/etcd/server/v3 ""
        ;;
      kube-apiserver | kubectl)
        [ "$(version_of "$BIN/$name")" = "$KUBE_VERSION" ] && continue
        [ -f "$BUILD/kube/go.mod" ] && grep -q "^require k8s.io/kubernetes $KUBE_VERSION\$" "$BUILD/kube/go.mod" \
          || write_build_module "$BUILD/kube" k8s.io/kubernetes "$KUBE_VERSION" v0
        go_build "$BUILD/kube" "$name" "k8s.io/kubernetes/cmd/$name" "$(kube_ldflags)"
        ;;
    esac
    local want=$KUBE_VERSION; [ "$name" = etcd ] && want=$ETCD_VERSION
    [ "$(version_of "$BIN/$name")" = "$want" ] \
      || die "$BIN/$name reports version '$(version_of "$BIN/$name")', not $want, after building"
  done
  exec 9>&-
}

token() { awk -F, 'NR == 1 {print $1}' "$PKI/tokens.csv"; }

readyz() {
  [ -f "$PKI/ca.crt" ] && [ -f "$PKI/tokens.csv" ] || return 1
  [ "$(curl -sS --max-time 5 --cacert "$PKI/ca.crt" -H "Authorization: Bearer $(token)" \
    "https://127.0.0.1:$PORT/readyz" 2>/dev/null)" = "ok" ]
}

cmd_status() { running "$APISERVER_PID" kube-apiserver && readyz; }

# Makes a CA, a serving certificate for 127.0.0.1 and localhost, the service-account key pair and
# the admin token, each once; later starts reuse them so kubeconfigs stay valid.
ensure_pki() {
  mkdir -p "$PKI"; chmod 700 "$PKI"
  if [ ! -f "$PKI/ca.crt" ]; then
    say "making a CA, serving certificate, service-account keys and admin token in $PKI"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=dataverket-test-ca" \
      -keyout "$PKI/ca.key" -out "$PKI/ca.crt" 2>/dev/null || die "openssl could not make the CA"
    rm -f "$PKI/apiserver.crt"
  fi
  if [ ! -f "$PKI/apiserver.crt" ]; then
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
      -keyout "$PKI/apiserver.key" -out "$PKI/apiserver.csr" 2>/dev/null || die "openssl could not make a CSR"
    cat >"$PKI/apiserver.ext" <<EXT
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.96.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
EXT
    openssl x509 -req -in "$PKI/apiserver.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -extfile "$PKI/apiserver.ext" -out "$PKI/apiserver.crt" 2>/dev/null \
      || die "openssl could not sign the serving certificate"
    rm -f "$PKI/apiserver.csr" "$PKI/apiserver.ext"
  fi
  if [ ! -f "$PKI/sa.pub" ]; then
    openssl genrsa -out "$PKI/sa.key" 2048 2>/dev/null && openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null \
      || die "openssl could not make the service-account key pair"
  fi
  if [ ! -f "$PKI/tokens.csv" ]; then
    printf '%s,admin,admin,"system:masters"\n' "$(openssl rand -hex 24)" >"$PKI/tokens.csv"
  fi
  chmod 600 "$PKI"/*.key "$PKI/tokens.csv"
}

write_kubeconfig() {
  local tmp="$KUBECONFIG_FILE.tmp"
  cat >"$tmp" <<CONF
# Written by hack/kube.sh; edits are overwritten.
apiVersion: v1
kind: Config
clusters:
- name: dv-test
  cluster:
    server: https://127.0.0.1:$PORT
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: dv-test-admin
  user:
    token: $(token)
contexts:
- name: dv-test
  context:
    cluster: dv-test
    user: dv-test-admin
    namespace: default
current-context: dv-test
CONF
  chmod 600 "$tmp"; mv -f "$tmp" "$KUBECONFIG_FILE"
}

# Dies, before anything starts, when a port that a stopped process of ours needs is taken.
check_ports() {
  if ! running "$ETCD_PID" etcd; then
    ! port_open "$ETCD_PORT" || die "port $ETCD_PORT is in use by something other than this project's etcd; set DV_TEST_ETCD_PORT to a free port"
    ! port_open "$ETCD_PEER_PORT" || die "port $ETCD_PEER_PORT is in use by something other than this project's etcd; set DV_TEST_ETCD_PEER_PORT to a free port"
  fi
  if ! running "$APISERVER_PID" kube-apiserver; then
    ! port_open "$PORT" || die "port $PORT is in use by something other than this project's kube-apiserver; set DV_TEST_KUBE_PORT to a free port"
  fi
}

start_etcd() {
  running "$ETCD_PID" etcd && return 0
  mkdir -p "$ETCD_DATA"; chmod 700 "$ETCD_DATA"
  say "starting etcd $(version_of "$BIN/etcd") on 127.0.0.1:$ETCD_PORT (data in $ETCD_DATA)"
  launch "$ETCD_PID" etcd "$ETCD_LOG" \
    --name=dv-test \
    --data-dir="$ETCD_DATA" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster="dv-test=http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster-state=new \
    --log-level=warn
  local i
  for ((i = 0; i < 300; i++)); do
    curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"' && return 0
    running "$ETCD_PID" etcd || die "etcd exited at start; see $ETCD_LOG"
    sleep 0.1
  done
  stop_one "$ETCD_PID" etcd
  die "etcd did not become healthy in 30s; see $ETCD_LOG"
}

start_apiserver() {
  running "$APISERVER_PID" kube-apiserver && return 0
  say "starting kube-apiserver $(version_of "$BIN/kube-apiserver") on https://127.0.0.1:$PORT"
  launch "$APISERVER_PID" kube-apiserver "$APISERVER_LOG" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 \
    --advertise-address=127.0.0.1 \
    --secure-port="$PORT" \
    --cert-dir="$PKI" \
    --tls-cert-file="$PKI/apiserver.crt" \
    --tls-private-key-file="$PKI/apiserver.key" \
    --client-ca-file="$PKI/ca.crt" \
    --token-auth-file="$PKI/tokens.csv" \
    --authorization-mode=RBAC \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI/sa.pub" \
    --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/24 \
    --allow-privileged=true \
    --endpoint-reconciler-type=none
}

cmd_start() {
  cmd_install
  mkdir -p "$KROOT"
  # Concurrent starts queue here, and the later ones find the control plane running.
  exec 8>"$KROOT/.start.lock"
  flock 8
  if cmd_status; then write_kubeconfig; return 0; fi
  local started=$SECONDS
  check_ports
  ensure_pki
  start_etcd
  start_apiserver
  local i
  for ((i = 0; i < 1200; i++)); do
    if readyz; then
      write_kubeconfig
      say "kube-apiserver ready in $((SECONDS - started))s; kubeconfig: $KUBECONFIG_FILE"
      return 0
    fi
    running "$APISERVER_PID" kube-apiserver || { cmd_stop; die "kube-apiserver exited at start; see $APISERVER_LOG"; }
    sleep 0.1
  done
  cmd_stop
  die "kube-apiserver did not become ready in 120s; see $APISERVER_LOG"
}

cmd_stop() {
  stop_one "$APISERVER_PID" kube-apiserver
  stop_one "$ETCD_PID" etcd
}

cmd_kubeconfig() {
  [ -f "$PKI/ca.crt" ] && [ -f "$PKI/tokens.csv" ] && write_kubeconfig
  echo "$KUBECONFIG_FILE"
}

cmd_kubectl() {
  [ -x "$BIN/kubectl" ] || die "no kubectl in $BIN; run hack/kube.sh install"
  [ -f "$KUBECONFIG_FILE" ] || die "no kubeconfig yet; run hack/kube.sh start"
  exec "$BIN/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "https://127.0.0.1:$PORT" ;;
  kubeconfig) cmd_kubeconfig ;;
  kubectl) shift; cmd_kubectl "$@" ;;
  *) echo "usage: $0 install|start|stop|status|url|kubeconfig|kubectl [arg…]" >&2; exit 2 ;;
esac
