#!/usr/bin/env bash
# A private nats-server with JetStream for tests, benchmarks and `npm run dev`.
#
# The binary is a pinned release built with `go install` into .cache/bin (once per machine: Go's
# module and build caches make later builds a quick link). Without Go we fall back to Debian's
# nats-server package with a warning: it is older than the release the tests pin.
#
#   hack/nats.sh install   build or install nats-server when missing; print its path
#   hack/nats.sh start     install, then start on 127.0.0.1:${DV_TEST_NATS_PORT:-24222} (no-op when running)
#   hack/nats.sh stop      stop (no-op when stopped)
#   hack/nats.sh status    exit 0 when running
#   hack/nats.sh url       print the client URL
#   hack/nats.sh bin       print the path of the binary (installing it if needed)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NATS_VERSION="v2.15.2"
PORT="${DV_TEST_NATS_PORT:-24222}"
MONITOR_PORT="${DV_TEST_NATS_MONITOR_PORT:-28222}"
NROOT="$CACHE/nats"
CONF="$NROOT/nats.conf"
PIDFILE="$NROOT/nats.pid"
LOG="$CACHE/log/nats.log"

version_of() { "$1" --version 2>/dev/null | awk '{print $NF}'; }

# Prints the path of a usable nats-server, installing one when there is none.
cmd_install() {
  local pinned="$BIN/nats-server"
  if [ -x "$pinned" ] && [ "$(version_of "$pinned")" = "$NATS_VERSION" ]; then
    echo "$pinned"; return 0
  fi
  if command -v go >/dev/null 2>&1; then
    say "building nats-server $NATS_VERSION with go install (once per machine)"
    GOBIN="$BIN" GOFLAGS="-buildvcs=false" CGO_ENABLED=0 \
      go install "github.com/nats-io/nats-server/v2@$NATS_VERSION" >&2 \
      || die "go install github.com/nats-io/nats-server/v2@$NATS_VERSION failed"
    echo "$pinned"; return 0
  fi
  if ! command -v nats-server >/dev/null 2>&1; then
    apt_install nats-server
  fi
  local system; system=$(command -v nats-server) || die "no Go toolchain and no nats-server package"
  warn "no Go toolchain: using $system $(version_of "$system"), not the pinned $NATS_VERSION"
  echo "$system"
}

cmd_status() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null && port_open "$PORT"
}

cmd_start() {
  local bin; bin=$(cmd_install)
  if cmd_status; then return 0; fi
  if port_open "$PORT"; then
    die "port $PORT is in use by something other than this project's nats-server; set DV_TEST_NATS_PORT to a free port"
  fi
  mkdir -p "$NROOT"
  cat >"$CONF" <<CONF
# Written by hack/nats.sh; edits are overwritten.
server_name: dv-test
listen: 127.0.0.1:$PORT
http: 127.0.0.1:$MONITOR_PORT
pid_file: "$PIDFILE"
max_payload: 8MB
jetstream {
  store_dir: "$NROOT"
  max_memory_store: 1GB
  max_file_store: 20GB
  # fsync every second, not every write: what a crash could lose is still in PostgreSQL's
  # outbox, which keeps what it published for longer than this (ADR 0012).
  sync_interval: 1s
}
CONF
  say "starting nats-server $(version_of "$bin") on 127.0.0.1:$PORT"
  setsid nohup "$bin" -c "$CONF" >>"$LOG" 2>&1 </dev/null &
  wait_port "$PORT" 30 || die "nats-server did not start; see $LOG"
  local i
  for ((i = 0; i < 100; i++)); do
    curl -fsS "http://127.0.0.1:$MONITOR_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "nats-server started but JetStream is not healthy; see $LOG"
}

cmd_stop() {
  [ -f "$PIDFILE" ] || return 0
  local pid; pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    local i
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  install) cmd_install >/dev/null ;;
  bin) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "nats://127.0.0.1:$PORT" ;;
  *) echo "usage: $0 install|bin|start|stop|status|url" >&2; exit 2 ;;
esac
