# shellcheck shell=bash
# Shared helpers for hack/ scripts. Sourced, not run.
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HACK_DIR/.." && pwd)"
CACHE="${DV_CACHE_DIR:-$ROOT/.cache}"
BIN="$CACHE/bin"
mkdir -p "$BIN" "$CACHE/log"

say() { printf '%s: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
warn() { printf '%s: warning: %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '%s: error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

# Holds an exclusive lock named $1 (a file under .cache) until the calling shell exits: two
# scripts started at once (two test runs, two terminals) wait for each other instead of building
# the same thing twice, the second one then finding it done. Call it in a subshell that starts no
# server: a child inherits the lock's file descriptor, and with it the lock.
hold_lock() {
  exec 9>"$CACHE/$1.lock"
  flock 9
}

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (install it by hand, or run as root)"; fi
}

# Installs Debian packages that are missing; quiet when everything is there.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing Debian packages: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { as_root apt-get update >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; } \
    || die "apt-get install ${missing[*]} failed"
}

# True when something accepts TCP connections on 127.0.0.1:$1.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits up to $2 seconds for 127.0.0.1:$1 to accept connections.
wait_port() {
  local port=$1 seconds=${2:-30} i
  for ((i = 0; i < seconds * 10; i++)); do
    port_open "$port" && return 0
    sleep 0.1
  done
  return 1
}

# True when the pid in file $1 is alive and runs binary $2 (also after a rebuild replaced the file).
running() {
  [ -f "$1" ] || return 1
  local pid exe; pid=$(cat "$1")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "${exe% (deleted)}" = "$BIN/$2" ]
}

# Starts binary $2 with arguments $4… in its own session, logging to $3, and writes its pid to $1.
# Returns once the process has exec'd the binary, so `running` is true from then on.
launch() {
  local pidfile=$1 name=$2 log=$3; shift 3
  # 8>&- 9>&-: the daemon must not inherit (and so hold) the start and build locks.
  setsid nohup "$BIN/$name" "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
  local pid=$! i
  echo "$pid" >"$pidfile"
  for ((i = 0; i < 100; i++)); do
    running "$pidfile" "$name" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  rm -f "$pidfile"
  die "$name exited at start; see $log"
}

# Stops the process in pid file $1 if it runs binary $2: TERM, then KILL after 15 seconds.
stop_one() {
  if running "$1" "$2"; then
    local pid i; pid=$(cat "$1")
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$1"
}
