#!/usr/bin/env bash
# Two server builds side by side in one run, on the hot requests: each gets its own SQLite file
# and port, and they take turns under the same wrk load so the machine's noise falls on both
# alike. Loopback only, bounded in time (2 x ROUNDS x 4 x SECONDS).
#
#   scripts/compare-builds.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
#
# The requests: GET /deployments/1 and GET /deployments/1/nodes of a 200-node deployment, and
# POST /deployments/1/telemetry of 100 samples (without timestamps, as JSON), then
# GET /deployments/1/bottlenecks over what the pushes stored (two connections: the report gate
# gives one turn per core). wrk is Debian's package, installed if missing.
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} seconds=${4:-8}
if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi
scratch=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$scratch"' EXIT

start() { # binary port
  RUST_LOG=warn "$1" --database-url "sqlite://$scratch/$2.db" --bind "127.0.0.1:$2" --workers none &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "127.0.0.1:$2/ready" >/dev/null && break; sleep 0.1; done
  curl -sf -X POST "127.0.0.1:$2/deployments" -H 'content-type: application/json' \
    -d '{"name": "bench-200", "target_node_count": 200}' >/dev/null
}
start "$old" 18181
start "$new" 18182

# 100 samples of the deployment's first 100 nodes (ids 1 to 100 on a fresh file).
python3 - "$scratch/push.lua" <<'PY'
import json, sys
samples = [{"node_id": n, "latency_ms": 10.0, "throughput_gbps": 9.0, "error_rate": 0.1}
           for n in range(1, 101)]
body = json.dumps({"samples": samples})
with open(sys.argv[1], "w") as lua:
    lua.write('wrk.method = "POST"\n')
    lua.write('wrk.headers["Content-Type"] = "application/json"\n')
    lua.write("wrk.body = [[" + body + "]]\n")
PY

measure() { # port path [wrk args...]
  local port=$1 path=$2
  shift 2
  wrk -t2 -c64 -d"${seconds}s" --latency "$@" "http://127.0.0.1:$port$path" \
    | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} / 50%/ {m=$2} END {print r, "req/s, p50", m, "p99", p}'
}

for round in $(seq 1 "$rounds"); do
  for request in deployment nodes push report; do
    for which in old new; do
      port=18181; [ "$which" = new ] && port=18182
      case $request in
        deployment) result=$(measure "$port" /deployments/1) ;;
        nodes) result=$(measure "$port" /deployments/1/nodes) ;;
        push) result=$(measure "$port" /deployments/1/telemetry -s "$scratch/push.lua") ;;
        # Two at a time: the report gate gives one turn per core and tells the rest to wait.
        report) result=$(measure "$port" /deployments/1/bottlenecks -c2) ;;
      esac
      echo "round $round $request $which: $result"
    done
  done
done
