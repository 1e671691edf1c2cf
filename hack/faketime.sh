#!/usr/bin/env bash
# libfaketime, for the clock-skew scenario of `npm run chaos`: a process started with
# LD_PRELOAD=<lib> FAKETIME=+5m sees its wall clock five minutes ahead.
#
#   hack/faketime.sh install   install Debian's libfaketime if it is missing
#   hack/faketime.sh lib       install, then print the path of the library to preload
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cmd_lib() {
  apt_install libfaketime
  local lib
  lib=$(dpkg -L libfaketime | grep -E '/libfaketime\.so\.1$' | head -n 1)
  [ -n "$lib" ] && [ -f "$lib" ] || die "libfaketime is installed but libfaketime.so.1 was not found"
  echo "$lib"
}

case "${1:-}" in
  install) apt_install libfaketime ;;
  lib) cmd_lib ;;
  *) echo "usage: $0 install|lib" >&2; exit 2 ;;
esac
