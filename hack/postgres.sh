#!/usr/bin/env bash
# A private PostgreSQL server for tests and benchmarks: Debian's postgresql package, our own
# cluster (initdb) under .cache/pg, listening on 127.0.0.1:${DV_TEST_PG_PORT:-25432} only,
# trust authentication on loopback, fsync on. Idempotent: every command can be repeated.
#
#   hack/postgres.sh install   install the server package if it is missing
#   hack/postgres.sh start     install, initialise once, start (no-op when running)
#   hack/postgres.sh stop      stop (no-op when stopped)
#   hack/postgres.sh status    exit 0 when running
#   hack/postgres.sh url       print the connection URL
#   hack/postgres.sh standby-start   a streaming replica of it (pg_basebackup -R), read-only, on
#                              ${DV_TEST_PG_STANDBY_PORT:-25433}; made anew on every start
#   hack/postgres.sh standby-stop    stop the replica and remove it
#   hack/postgres.sh standby-url     print the replica's connection URL
#   hack/postgres.sh scratch-start   a server of its own for a test that restarts it (the chaos
#                              harness), on ${DV_TEST_PG_SCRATCH_PORT:-25434}; initialised once
#   hack/postgres.sh scratch-crash   stop it the way a crash would (immediate: no checkpoint, crash
#                              recovery on the next start)
#   hack/postgres.sh scratch-remove  crash it if running, and remove it
#   hack/postgres.sh scratch-url     print its connection URL
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="${DV_TEST_PG_PORT:-25432}"
PGROOT="$CACHE/pg"
DATA="$PGROOT/data"
RUN="$PGROOT/run"
LOG="$CACHE/log/postgres.log"
STANDBY_PORT="${DV_TEST_PG_STANDBY_PORT:-25433}"
STANDBY="$PGROOT/standby"
STANDBY_LOG="$CACHE/log/postgres-standby.log"
SCRATCH_PORT="${DV_TEST_PG_SCRATCH_PORT:-25434}"
SCRATCH="$PGROOT/scratch"
SCRATCH_LOG="$CACHE/log/postgres-scratch.log"

pg_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return 0; }
  return 1
}

# PostgreSQL refuses to run as root; as root we run it as the package's postgres user.
run_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd_install() {
  pg_bindir >/dev/null || apt_install postgresql postgresql-contrib
  pg_bindir >/dev/null || die "no initdb under /usr/lib/postgresql/*/bin after installing postgresql"
}

cmd_status() { [ -f "$DATA/PG_VERSION" ] && run_pg "$(pg_bindir)/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

cmd_start() {
  cmd_install
  local bindir; bindir=$(pg_bindir)
  if cmd_status; then return 0; fi
  if port_open "$PORT"; then
    die "port $PORT is in use by something other than this project's PostgreSQL; set DV_TEST_PG_PORT to a free port"
  fi
  mkdir -p "$PGROOT" "$RUN"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$PGROOT" "$RUN"
    runuser -u postgres -- test -x "$PGROOT" \
      || die "the postgres user cannot reach $PGROOT; move the checkout somewhere readable or set DV_CACHE_DIR"
  fi
  if [ ! -f "$DATA/PG_VERSION" ]; then
    say "initialising a PostgreSQL cluster in $DATA"
    run_pg "$bindir/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$DATA/postgresql.conf" <<CONF
# --- dataverket test server (hack/postgres.sh) ---
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$RUN'
max_connections = 400
shared_buffers = 256MB
fsync = on
synchronous_commit = on
max_locks_per_transaction = 256
log_min_messages = warning
CONF
  fi
  touch "$LOG"; [ "$(id -u)" -eq 0 ] && chown postgres "$LOG"
  say "starting PostgreSQL on 127.0.0.1:$PORT"
  # pg_stat_statements is loaded so `npm run bench` can say which statements the time went to.
  # The port is given on every start: a cluster made earlier on another port moves with
  # DV_TEST_PG_PORT.
  run_pg "$bindir/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
    -o "-c port=$PORT -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" start >/dev/null \
    || die "PostgreSQL did not start; see $LOG"
}

cmd_stop() {
  cmd_standby_stop
  cmd_status || return 0
  run_pg "$(pg_bindir)/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
}

standby_running() {
  [ -f "$STANDBY/PG_VERSION" ] && run_pg "$(pg_bindir)/pg_ctl" -D "$STANDBY" status >/dev/null 2>&1
}

cmd_standby_stop() {
  if standby_running; then run_pg "$(pg_bindir)/pg_ctl" -D "$STANDBY" -m immediate -w stop >/dev/null; fi
  rm -rf "$STANDBY"
}

cmd_standby_start() {
  cmd_start
  cmd_standby_stop
  if port_open "$STANDBY_PORT"; then
    die "port $STANDBY_PORT is in use; set DV_TEST_PG_STANDBY_PORT to a free port"
  fi
  local bindir; bindir=$(pg_bindir)
  say "copying the test server into a streaming replica in $STANDBY"
  # -R writes standby.signal and primary_conninfo: the copy starts in recovery and follows.
  run_pg "$bindir/pg_basebackup" -h 127.0.0.1 -p "$PORT" -U postgres -D "$STANDBY" -R -X stream -c fast \
    || die "pg_basebackup of 127.0.0.1:$PORT failed"
  cat >>"$STANDBY/postgresql.conf" <<CONF
# --- the replica (hack/postgres.sh standby-start) ---
port = $STANDBY_PORT
shared_buffers = 32MB
hot_standby = on
CONF
  touch "$STANDBY_LOG"; [ "$(id -u)" -eq 0 ] && chown postgres "$STANDBY_LOG"
  say "starting the replica on 127.0.0.1:$STANDBY_PORT"
  run_pg "$bindir/pg_ctl" -D "$STANDBY" -l "$STANDBY_LOG" -w -t 60 start >/dev/null \
    || die "the replica did not start; see $STANDBY_LOG"
}

scratch_running() {
  [ -f "$SCRATCH/PG_VERSION" ] && run_pg "$(pg_bindir)/pg_ctl" -D "$SCRATCH" status >/dev/null 2>&1
}

cmd_scratch_start() {
  cmd_install
  local bindir; bindir=$(pg_bindir)
  if scratch_running; then return 0; fi
  if port_open "$SCRATCH_PORT"; then
    die "port $SCRATCH_PORT is in use; set DV_TEST_PG_SCRATCH_PORT to a free port"
  fi
  mkdir -p "$PGROOT" "$RUN"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PGROOT" "$RUN"
  if [ ! -f "$SCRATCH/PG_VERSION" ]; then
    run_pg "$bindir/initdb" -D "$SCRATCH" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$SCRATCH/postgresql.conf" <<CONF
# --- the scratch server (hack/postgres.sh scratch-start) ---
listen_addresses = '127.0.0.1'
port = $SCRATCH_PORT
unix_socket_directories = '$RUN'
max_connections = 200
shared_buffers = 64MB
fsync = on
synchronous_commit = on
max_locks_per_transaction = 256
log_min_messages = warning
CONF
  fi
  touch "$SCRATCH_LOG"; [ "$(id -u)" -eq 0 ] && chown postgres "$SCRATCH_LOG"
  run_pg "$bindir/pg_ctl" -D "$SCRATCH" -l "$SCRATCH_LOG" -w -t 60 -o "-c port=$SCRATCH_PORT" start >/dev/null \
    || die "the scratch server did not start; see $SCRATCH_LOG"
}

cmd_scratch_crash() {
  if scratch_running; then run_pg "$(pg_bindir)/pg_ctl" -D "$SCRATCH" -m immediate -w stop >/dev/null; fi
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) echo "postgres://postgres@127.0.0.1:$PORT/postgres" ;;
  standby-start) cmd_standby_start ;;
  standby-stop) cmd_standby_stop ;;
  standby-url) echo "postgres://postgres@127.0.0.1:$STANDBY_PORT/postgres" ;;
  scratch-start) cmd_scratch_start ;;
  scratch-crash) cmd_scratch_crash ;;
  scratch-remove) cmd_scratch_crash; rm -rf "$SCRATCH" ;;
  scratch-url) echo "postgres://postgres@127.0.0.1:$SCRATCH_PORT/postgres" ;;
  *) echo "usage: $0 install|start|stop|status|url|standby-start|standby-stop|standby-url|scratch-start|scratch-crash|scratch-remove|scratch-url" >&2; exit 2 ;;
esac
