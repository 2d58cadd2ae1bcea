#!/usr/bin/env bash
# Builds staticcheck and deadcode from their Go modules at pinned versions into the directory
# $1 (default /tmp/bridge-ci/lint) and runs both over the module: staticcheck ./... must
# report nothing; deadcode -test ./... (functions that neither a command nor a test reaches)
# must print nothing. .ci/run calls it after go vet.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2   # honnef.co/go/tools
XTOOLS_VERSION=v0.52.0       # golang.org/x/tools (cmd/deadcode)
bindir="${1:-/tmp/bridge-ci/lint}"
mkdir -p "$bindir"

echo "== building staticcheck $STATICCHECK_VERSION and deadcode (x/tools $XTOOLS_VERSION) into $bindir"
(cd "$bindir" && GOFLAGS=-mod=mod GOBIN="$bindir" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
(cd "$bindir" && GOFLAGS=-mod=mod GOBIN="$bindir" go install "golang.org/x/tools/cmd/deadcode@$XTOOLS_VERSION")

echo "== staticcheck ./..."
"$bindir/staticcheck" ./...

echo "== deadcode -test ./..."
dead="$("$bindir/deadcode" -test ./...)"
if [ -n "$dead" ]; then
  printf '%s\n' "$dead"
  echo "deadcode: the functions above are reached by no command and no test: delete them" >&2
  exit 1
fi
