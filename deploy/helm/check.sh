#!/usr/bin/env bash
# Builds helm from its Go module at a pinned version into the directory of $1 (default
# /tmp/bridge-ci/helm) and checks the chart in deploy/helm/bridge: helm lint, helm template
# with the default values, with 3 replicas on PostgreSQL (ci/postgres-values.yaml), and with
# 3 replicas without PostgreSQL, which must be refused with a message saying what to set.
# .ci/run calls it and hands the same helm to the Go tests (BRIDGE_HELM).
set -euo pipefail
cd "$(dirname "$0")/../.."

HELM_VERSION=v4.3.2
helm="${1:-/tmp/bridge-ci/helm/helm}"
bindir="$(dirname "$helm")"
mkdir -p "$bindir"

echo "== building helm $HELM_VERSION (helm.sh/helm/v4/cmd/helm) into $bindir"
(cd "$bindir" && GOFLAGS=-mod=mod GOBIN="$bindir" go install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION")
"$helm" version

chart=deploy/helm/bridge
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# helm keeps its cache and config away from the user's home.
export HELM_CACHE_HOME="$out/home" HELM_CONFIG_HOME="$out/home" HELM_DATA_HOME="$out/home"

echo "== helm lint"
"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --values "$chart/ci/postgres-values.yaml"
"$helm" lint --strict "$chart" --values "$chart/ci/ldap-values.yaml"

echo "== helm template: default values (1 replica, SQLite on a PVC)"
"$helm" template bridge "$chart" >"$out/default.yaml"
grep -q '^kind: Deployment' "$out/default.yaml"
grep -q '^kind: PersistentVolumeClaim' "$out/default.yaml"

echo "== helm template: 3 replicas on PostgreSQL"
"$helm" template bridge "$chart" --values "$chart/ci/postgres-values.yaml" >"$out/postgres.yaml"
grep -q '^  replicas: 3$' "$out/postgres.yaml"
grep -q '^kind: PodDisruptionBudget' "$out/postgres.yaml"

echo "== helm template: 3 replicas without PostgreSQL (must be refused)"
if "$helm" template bridge "$chart" --set replicaCount=3 >"$out/refused.yaml" 2>"$out/refused.err"; then
  echo "FAIL: helm template rendered 3 replicas without PostgreSQL" >&2
  exit 1
fi
cat "$out/refused.err"
grep -q 'replicaCount 3 needs PostgreSQL.*Set postgresql.existingSecret' "$out/refused.err" || {
  echo "FAIL: the refusal does not say what to set" >&2
  exit 1
}
echo "helm chart checks: ok"
