#!/usr/bin/env bash
# A private Jaeger (v2, built on the OpenTelemetry Collector) for the tracing tests and for
# looking at traces of `npm run dev`: an OTLP/HTTP receiver and Jaeger's query API, in memory.
#
# The binary is a pinned release built from its Go module into .cache/bin (once per machine).
# Jaeger's go.mod has replace directives, so `go install pkg@version` refuses it; we build it
# from a throwaway module under .cache/build/jaeger that requires the release as a tool.
#
#   hack/jaeger.sh install   build jaeger when missing or not the pinned version
#   hack/jaeger.sh start     install, then start: OTLP/HTTP on 127.0.0.1:${DV_TEST_OTLP_PORT:-24318},
#                            query API and UI on 127.0.0.1:${DV_TEST_JAEGER_PORT:-26686} (no-op when running)
#   hack/jaeger.sh stop      stop (no-op when stopped)
#   hack/jaeger.sh status    exit 0 when it is running and healthy
#   hack/jaeger.sh url       print the OTLP endpoint (for OTEL_EXPORTER_OTLP_ENDPOINT)
#   hack/jaeger.sh query     print the query API's base URL
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

JAEGER_VERSION="v1.76.0" # the Go module's tag of the Jaeger v2 binary (cmd/jaeger)
# Below 32768, Linux's first ephemeral port: started after kube-apiserver has opened its many etcd
# connections, a listener in the ephemeral range can find its port taken by one of them.
OTLP_PORT="${DV_TEST_OTLP_PORT:-24318}"
QUERY_PORT="${DV_TEST_JAEGER_PORT:-26686}"
QUERY_GRPC_PORT="${DV_TEST_JAEGER_GRPC_PORT:-26685}"
HEALTH_PORT="${DV_TEST_JAEGER_HEALTH_PORT:-23133}"
JROOT="$CACHE/jaeger"
CONF="$JROOT/config.yaml"
PIDFILE="$JROOT/jaeger.pid"
STAMP="$BIN/jaeger.version"
LOG="$CACHE/log/jaeger.log"

# In a subshell that holds the install lock, so the lock is not inherited by the server started
# after it.
cmd_install() { (hold_lock jaeger-install && install_unlocked) || exit 1; }

install_unlocked() {
  if [ -x "$BIN/jaeger" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$JAEGER_VERSION" ]; then return 0; fi
  command -v go >/dev/null 2>&1 || die "building jaeger needs Go (Debian: golang-go, or https://go.dev/dl); nothing else provides it here"
  local build="$CACHE/build/jaeger"
  say "building jaeger $JAEGER_VERSION with go build (once per machine; a few minutes)"
  rm -rf "$build" && mkdir -p "$build"
  printf 'module dataverket.local/hack/jaeger\n\ngo 1.26\n' >"$build/go.mod"
  (
    cd "$build"
    GOFLAGS=-buildvcs=false go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2
    CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -ldflags "-s -w" \
      -o "$BIN/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2
  ) || die "building jaeger $JAEGER_VERSION failed"
  mv "$BIN/jaeger.tmp" "$BIN/jaeger"
  echo "$JAEGER_VERSION" >"$STAMP"
}

healthy() { curl -fsS "http://127.0.0.1:$HEALTH_PORT/status" >/dev/null 2>&1; }

cmd_status() { running "$PIDFILE" jaeger && healthy; }

cmd_start() {
  cmd_install
  if cmd_status; then return 0; fi
  for port in "$OTLP_PORT" "$QUERY_PORT" "$HEALTH_PORT"; do
    port_open "$port" && die "port $port is in use by something other than this project's jaeger; set DV_TEST_OTLP_PORT, DV_TEST_JAEGER_PORT or DV_TEST_JAEGER_HEALTH_PORT"
  done
  mkdir -p "$JROOT"
  cat >"$CONF" <<CONF
# Written by hack/jaeger.sh; edits are overwritten. Jaeger v2 is an OpenTelemetry Collector:
# OTLP/HTTP in, kept in memory, served by the query extension.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$HEALTH_PORT
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:$QUERY_PORT
    grpc:
      endpoint: 127.0.0.1:$QUERY_GRPC_PORT
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$OTLP_PORT
processors:
  batch:
    timeout: 200ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
CONF
  say "starting jaeger $JAEGER_VERSION: OTLP on 127.0.0.1:$OTLP_PORT, query on http://127.0.0.1:$QUERY_PORT"
  launch "$PIDFILE" jaeger "$LOG" --config "$CONF"
  local i
  for ((i = 0; i < 300; i++)); do
    healthy && port_open "$OTLP_PORT" && return 0
    running "$PIDFILE" jaeger || die "jaeger exited; see $LOG"
    sleep 0.1
  done
  die "jaeger did not become healthy; see $LOG"
}

cmd_stop() { stop_one "$PIDFILE" jaeger; }

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "http://127.0.0.1:$OTLP_PORT" ;;
  query) echo "http://127.0.0.1:$QUERY_PORT" ;;
  *) echo "usage: $0 install|start|stop|status|url|query" >&2; exit 2 ;;
esac
