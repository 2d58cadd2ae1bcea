#!/bin/sh
# bench/scale.sh N [-bridge-gomemlimit 250MiB] [-rate-limit 200]: measure bridge against N generated people (slapd from internal/testenv,
# the in-memory babelforce simulator) and print the table of bench/scale_test.go.
# Needs slapd, slapadd, ldapsearch (Debian: slapd ldap-utils) and /usr/bin/time (Debian: time).
# Not part of CI: 100,000 people take several minutes and about 1 GB of memory in total.
set -eu
n=${1:-10000}
[ $# -gt 0 ] && shift
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)/bridge
trap 'rm -rf "$(dirname "$bin")"' EXIT
cd "$root"
go build -o "$bin" ./cmd/bridge
BRIDGE_BIN=$bin go test -v -tags scale -count=1 -timeout 3h -run '^TestScale$' ./bench -args -n "$n" "$@"
