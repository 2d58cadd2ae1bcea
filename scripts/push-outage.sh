#!/usr/bin/env bash
# push-outage.sh: how `bridge serve` answers IdP pushes while babelforce is down.
#
# Starts the babelforce simulator (`bridge simulate`) and `bridge serve` (directory.type
# scim_push, SQLite store) on loopback, stops the simulator (MODE=stop: SIGSTOP, it hangs;
# MODE=kill: killed, connections refused), POSTs N users to /scim/v2/Users and prints the
# answer times (median, max), /readyz and bridge_upstream_up{upstream="babelforce"}; then
# brings babelforce back (SIGCONT, or a new simulator on the same port) and waits until every
# user has exactly one agent, printing how long that took.
#
#   scripts/push-outage.sh                 # builds ./cmd/bridge
#   BRIDGE=/path/to/bridge MODE=kill N=50 scripts/push-outage.sh
#
# Needs curl and python3. Prints figures; it is a measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${MODE:-stop}
N=${N:-50}
WAIT=${WAIT:-120}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if [ -z "${BRIDGE:-}" ]; then
  go build -o "$work/bridge" ./cmd/bridge
  BRIDGE="$work/bridge"
fi
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
simport=$(port); bport=$(port)
sim="127.0.0.1:$simport"; base="http://127.0.0.1:$bport"
start_sim() { "$BRIDGE" simulate --listen "$sim" >"$work/sim.log" 2>&1 & simpid=$!; pids+=("$simpid"); 
  for _ in $(seq 200); do curl -sf "http://$sim/_simulator/stats" >/dev/null && return; sleep 0.05; done; echo "simulator did not start" >&2; exit 1; }
start_sim
scimtok=scim-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
admintok=admin-$(head -c 12 /dev/urandom | base64 | tr -d '/+=')
cat >"$work/bridge.yaml" <<YAML
babelforce:
  base_url: http://$sim
  username: admin@example.com
  timeout: 10s
  max_attempts: 2
  max_retry_time: 5s
directory:
  type: scim_push
mapping:
  agent_source: "bridge:outage"
  default_roles: [agent]
sync:
  interval: 1h
  jitter: 0
inbound_scim:
  enabled: true
store:
  path: $work/bridge.db
server:
  listen: 127.0.0.1:$bport
log:
  level: warn
  format: json
YAML
BRIDGE_BABELFORCE_PASSWORD=simulator BRIDGE_INBOUND_SCIM_TOKENS="$scimtok" BRIDGE_SERVER_ADMIN_TOKEN="$admintok" \
  "$BRIDGE" serve --config "$work/bridge.yaml" >"$work/serve.log" 2>&1 &
pids+=("$!")
for _ in $(seq 200); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.05; done
# let the scheduled run at start finish
for _ in $(seq 200); do curl -sf -H "Authorization: Bearer $admintok" "$base/api/v1/status" | grep -q '"trigger"' && break; sleep 0.05; done

case "$MODE" in
  stop) kill -STOP "$simpid" ;;
  kill) kill "$simpid"; wait "$simpid" 2>/dev/null || true ;;
  *) echo "MODE must be stop or kill" >&2; exit 2 ;;
esac
echo "babelforce $MODE: pushing $N users"
: >"$work/times"
for i in $(seq 1 "$N"); do
  u=$(printf 'outage%03d@example.com' "$i")
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -X POST "$base/scim/v2/Users" \
    -H "Authorization: Bearer $scimtok" -H 'Content-Type: application/scim+json' \
    -d "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\"userName\":\"$u\",\"name\":{\"givenName\":\"Out\",\"familyName\":\"Age$i\"},\"emails\":[{\"value\":\"$u\",\"primary\":true}],\"active\":true}" \
    --max-time 120 >>"$work/times" || echo "000 120" >>"$work/times"
done
python3 - "$work/times" <<'PY'
import sys, statistics
rows=[l.split() for l in open(sys.argv[1]) if l.strip()]
codes={}
for c,_ in rows: codes[c]=codes.get(c,0)+1
t=sorted(float(x)*1000 for _,x in rows)
print(f"answers: {codes}  median {statistics.median(t):.1f} ms  max {t[-1]:.1f} ms  total {sum(t)/1000:.1f} s")
PY
echo "readyz: $(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "$base/readyz")"
# the background check runs every 10 s (a hanging babelforce takes its 5 s timeout)
tm=$(date +%s.%N); up="(no bridge_upstream_up)"
for _ in $(seq 300); do
  up=$(curl -s --max-time 15 -H "Authorization: Bearer $admintok" "$base/metrics" | grep '^bridge_upstream_up{upstream="babelforce"}' || echo "(no bridge_upstream_up)")
  case "$up" in *" 0") break ;; esac
  sleep 0.1
done
echo "metric: $up (after $(python3 -c "print(round($(date +%s.%N)-$tm,1))") s of polling)"
echo "readyz: $(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "$base/readyz")"

t0=$(date +%s.%N)
case "$MODE" in
  stop) kill -CONT "$simpid" ;;
  kill) start_sim ;;
esac
echo "babelforce back; waiting for $N agents"
agents() {
  tok=$(curl -s -d grant_type=password -d client_id=manager -d username=admin@example.com -d password=simulator "http://$sim/oauth/token" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) || { echo 0; return; }
  curl -s -H "Authorization: Bearer $tok" "http://$sim/api/v2/agents?max=1" |
    python3 -c 'import sys,json; print(json.load(sys.stdin)["pagination"]["total"])' 2>/dev/null || echo 0
}
got=0
for _ in $(seq $((WAIT*10))); do
  got=$(agents)
  [ "$got" -ge "$N" ] && break
  sleep 0.1
done
t1=$(date +%s.%N)
echo "agents: $got after $(python3 -c "print(round($t1-$t0,1))") s"
curl -s "http://$sim/_simulator/stats" | python3 -c 'import sys,json; d=json.load(sys.stdin); c=d.get("calls",d); print("agent creates (POST /api/v2/agents) since babelforce came back:", c.get("POST /api/v2/agents", 0))' || true
