#!/usr/bin/env bash
# Schemathesis, the contract fuzzer of the public API (src/api/contract.int.test.ts), in a Python
# virtual environment of its own under .cache/ (nothing is installed into the system's Python).
#
# The version is pinned; `install` is a no-op once the environment reports it. Debian's
# python3-venv is installed when `python3 -m venv` cannot make an environment.
#
#   hack/schemathesis.sh install   create the environment and install the pinned version when missing
#   hack/schemathesis.sh bin       print the path of its `st` command (installing it if needed)
#   hack/schemathesis.sh st ARGS   run `st ARGS`
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SCHEMATHESIS_VERSION="4.32.5"
VENV="$CACHE/schemathesis"
ST="$VENV/bin/st"

installed_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null
}

cmd_install() {
  [ -x "$ST" ] && [ "$(installed_version)" = "$SCHEMATHESIS_VERSION" ] && return 0
  command -v python3 >/dev/null 2>&1 || apt_install python3
  # One install at a time, even across concurrent callers (two test runs on one machine).
  exec 9>"$CACHE/.schemathesis.lock"
  flock 9
  [ -x "$ST" ] && [ "$(installed_version)" = "$SCHEMATHESIS_VERSION" ] && return 0
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$VENV"
    if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
      # Debian's python3 makes a virtual environment only with python3-venv (ensurepip).
      rm -rf "$VENV"
      apt_install python3-venv
      python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
  fi
  say "installing schemathesis $SCHEMATHESIS_VERSION into $VENV (once per machine)"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION" >&2 \
    || die "pip install schemathesis==$SCHEMATHESIS_VERSION failed"
  [ "$(installed_version)" = "$SCHEMATHESIS_VERSION" ] || die "schemathesis $SCHEMATHESIS_VERSION did not install"
}

case "${1:-}" in
  install) cmd_install ;;
  bin) cmd_install && echo "$ST" ;;
  st) shift; cmd_install && exec "$ST" "$@" ;;
  *) echo "usage: $0 install|bin|st ARGS" >&2; exit 2 ;;
esac
