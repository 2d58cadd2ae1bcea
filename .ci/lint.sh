#!/usr/bin/env bash
# Builds staticcheck from its Go module at a pinned version into the directory $1 (default
# /tmp/bridge-ci/lint) and runs it over the module: staticcheck ./... must report nothing.
# .ci/run calls it after go vet.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2   # honnef.co/go/tools
bindir="${1:-/tmp/bridge-ci/lint}"
mkdir -p "$bindir"

echo "== building staticcheck $STATICCHECK_VERSION into $bindir"
(cd "$bindir" && GOFLAGS=-mod=mod GOBIN="$bindir" go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")

echo "== staticcheck ./..."
"$bindir/staticcheck" ./...
