#!/usr/bin/env bash
# gitops-health, the test tool that computes health as Flux and Argo CD do, with their own
# libraries: kstatus (sigs.k8s.io/cli-utils) and the Argo CD health Lua in gopher-lua inside
# Argo CD v3.6's health flow. Its sources are hack/health/; the versions of both libraries are
# pinned in hack/health/go.mod and go.sum, fetched from the Go module proxy.
#
# The binary is built with `go build` into .cache/bin (once per machine and per change of its
# sources, about half a minute on 2 cores; Go's module and build caches make later builds a quick
# link). `install` is a no-op while the binary's --version carries the hash of hack/health/.
#
#   hack/health.sh install       build gitops-health when missing or built from other sources
#   hack/health.sh bin           print the path of the binary (building it if needed)
#   hack/health.sh run ARG…      run it, e.g. kubectl get np -o json | hack/health.sh run --argocd-cm FILE
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SRC="$HACK_DIR/health"
NAME="gitops-health"

# The hash of everything the binary is built from; the build stamps it into the binary.
source_stamp() {
  (cd "$SRC" && cat go.mod go.sum ./*.go) | sha256sum | cut -c1-16
}

stamp_of() { "$1" --version 2>/dev/null | awk '{print $2}'; }

cmd_install() {
  local want; want=$(source_stamp)
  [ "$(stamp_of "$BIN/$NAME")" = "$want" ] && return 0
  command -v go >/dev/null 2>&1 || die "building $NAME needs a Go toolchain, and there is none on PATH"
  (
    # Two test files that start at once wait here; the second finds the binary built.
    hold_lock health-build
    [ "$(stamp_of "$BIN/$NAME")" = "$want" ] && exit 0
    local started=$SECONDS
    say "building $NAME from hack/health (once per change of its sources)"
    (cd "$SRC" && CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly" \
      nice -n 10 go build -trimpath -ldflags "-s -w -X main.stamp=$want" -o "$BIN/$NAME.tmp" .) >&2 \
      || { rm -f "$BIN/$NAME.tmp"; die "go build in hack/health failed"; }
    mv -f "$BIN/$NAME.tmp" "$BIN/$NAME"
    [ "$(stamp_of "$BIN/$NAME")" = "$want" ] \
      || die "$BIN/$NAME reports '$("$BIN/$NAME" --version 2>&1)', not stamp $want, after building"
    say "built $("$BIN/$NAME" --version) in $((SECONDS - started))s"
  )
}

case "${1:-}" in
  install) cmd_install ;;
  bin) cmd_install && echo "$BIN/$NAME" ;;
  run) shift; cmd_install && exec "$BIN/$NAME" "$@" ;;
  *) echo "usage: $0 install|bin|run [arg…]" >&2; exit 2 ;;
esac
