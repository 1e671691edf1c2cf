#!/usr/bin/env bash
# Two datacenters on one machine, in the background (ADR 0007; hack/sites.ts says what runs):
#
#   hack/sites.sh up      start both sites: two linked nats-servers, dc1's API, controller and
#                         worker, dc2's worker, on the test PostgreSQL (database dv_sites);
#                         prints the API's address, an operator token, and each process's log
#                         file (under .cache/sites/logs)
#   hack/sites.sh cut     cut the site link between dc1 and dc2
#   hack/sites.sh heal    heal it
#   hack/sites.sh down    stop everything
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PIDFILE="$CACHE/sites/sites.pid"
LOG="$CACHE/log/sites.log"

alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

case "${1:-}" in
  up)
    alive && { say "already up (pid $(cat "$PIDFILE")); see $LOG"; exit 0; }
    bash "$HACK_DIR/nats.sh" install >/dev/null
    mkdir -p "$CACHE/sites"; rm -f "$PIDFILE"; : >"$LOG"
    # Every descriptor redirected, so the caller's pipes close when this script ends.
    (cd "$ROOT" && exec setsid nohup npx --no-install tsx hack/sites.ts) >>"$LOG" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      grep -q "two sites are up" "$LOG" 2>/dev/null && { sed -n '/two sites are up/,$p' "$LOG" >&2; exit 0; }
      sleep 0.5
    done
    # Stop what did start (hack/sites.ts writes its pid first and stops its children on TERM).
    alive && kill -TERM "$(cat "$PIDFILE")"
    die "the sites did not come up in 60 s; see $LOG"
    ;;
  cut) alive || die "not up"; kill -USR1 "$(cat "$PIDFILE")"; say "site link cut" ;;
  heal) alive || die "not up"; kill -USR2 "$(cat "$PIDFILE")"; say "site link healed" ;;
  down)
    if alive; then
      kill -TERM "$(cat "$PIDFILE")"
      for _ in $(seq 1 100); do alive || break; sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    ;;
  *) echo "usage: $0 up|cut|heal|down" >&2; exit 2 ;;
esac
