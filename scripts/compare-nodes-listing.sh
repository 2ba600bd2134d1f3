#!/usr/bin/env bash
# GET /deployments/{id}/nodes for a 200-node deployment, two server builds side by side in one
# run: each gets its own SQLite file and port, and they take turns under the same wrk load so the
# machine's noise falls on both alike. Loopback only, bounded in time.
#
#   scripts/compare-nodes-listing.sh OLD_BINARY NEW_BINARY [ROUNDS] [SECONDS]
set -euo pipefail
old=$1 new=$2 rounds=${3:-3} seconds=${4:-8}
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
# Same bytes from both (the listing's shape must not change for speed).
if ! cmp -s <(curl -s 127.0.0.1:18181/deployments/1/nodes | python3 -c 'import json,sys; d=json.load(sys.stdin); [n.pop(k) for n in d["nodes"] for k in ("created_at","updated_at","state_changed_at")]; print(json.dumps(d, sort_keys=True))') \
            <(curl -s 127.0.0.1:18182/deployments/1/nodes | python3 -c 'import json,sys; d=json.load(sys.stdin); [n.pop(k) for n in d["nodes"] for k in ("created_at","updated_at","state_changed_at")]; print(json.dumps(d, sort_keys=True))'); then
  echo "the two builds list different nodes" >&2
  exit 1
fi
for round in $(seq 1 "$rounds"); do
  for which in old new; do
    port=18181; [ "$which" = new ] && port=18182
    rate=$(wrk -t2 -c64 -d"${seconds}s" --latency "http://127.0.0.1:$port/deployments/1/nodes" \
      | awk '/Requests\/sec/ {r=$2} / 99%/ {p=$2} END {print r, "req/s, p99", p}')
    echo "round $round $which: $rate"
  done
done
