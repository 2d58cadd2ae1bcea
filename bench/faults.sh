#!/bin/sh
# bench/faults.sh [N] [RATES]: convergence of `bridge sync` under the simulator's seeded faults
# (bench/faults_test.go): N generated people (default 3000) in an LDIF file, fault rates
# RATES (default 0.05,0.2); prints runs to converge, duplicates and wrong disables per rate.
# Not part of CI: at 20% faults one run over 3,000 people takes several minutes.
set -eu
n=${1:-3000}
rates=${2:-0.05,0.2}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(mktemp -d)/bridge
trap 'rm -rf "$(dirname "$bin")"' EXIT
cd "$root"
go build -o "$bin" ./cmd/bridge
BRIDGE_BIN=$bin go test -v -tags scale -count=1 -timeout 3h -run '^TestFaultConvergence$' ./bench -args -n "$n" -fault-rates "$rates"
