#!/usr/bin/env bash
# Load benchmark of netorch-server over loopback, bounded in time (about two minutes).
#
#   scripts/load-bench.sh            # SQLite (a temporary file)
#   scripts/load-bench.sh postgres://postgres@127.0.0.1:5432/test
#
# Measures, with wrk (Debian's package, installed here if missing):
# - GET /deployments/{id} and GET /deployments/{id}/nodes for a 200-node deployment;
# - GET /deployments/{id}/bottlenecks for a 10,000-node deployment holding a 10-minute window
#   of samples (120 per node, 1.2 million), seeded through POST /deployments/{id}/telemetry.
# The server runs without workers, so only the requests load it. The numbers go into
# docs/PERFORMANCE.md.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
  apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

scratch=$(mktemp -d)
url=${1:-sqlite://$scratch/bench.db}
port=${NETORCH_BENCH_PORT:-18080}
base=http://127.0.0.1:$port
duration=${NETORCH_BENCH_SECONDS:-10}

cargo build --release --bin netorch-server
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
RUST_LOG=warn "$target_dir/release/netorch-server" --database-url "$url" --bind "127.0.0.1:$port" \
  --workers none --max-nodes-per-deployment 10000 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$scratch"' EXIT
for _ in $(seq 1 100); do curl -sf "$base/ready" >/dev/null && break; sleep 0.1; done

create() {
  curl -sf -X POST "$base/deployments" -H 'content-type: application/json' \
    -d "{\"name\": \"$1\", \"target_node_count\": $2}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

small=$(create bench-200 200)
echo "== GET /deployments/$small (200 nodes), ${duration}s, 2 threads, 64 connections"
wrk -t2 -c64 -d"${duration}s" --latency "$base/deployments/$small" | grep -E 'Requests/sec|Latency|50%|90%|99%'
echo "== GET /deployments/$small/nodes (200 nodes), ${duration}s, 2 threads, 64 connections"
wrk -t2 -c64 -d"${duration}s" --latency "$base/deployments/$small/nodes" | grep -E 'Requests/sec|Latency|50%|90%|99%'

large=$(create bench-10000 10000)
echo "== seeding 10,000 nodes x 120 samples into deployment $large"
python3 - "$base" "$large" <<'PY'
import json, math, sys, time, urllib.request
base, deployment = sys.argv[1], int(sys.argv[2])
nodes = json.load(urllib.request.urlopen(f"{base}/deployments/{deployment}/nodes"))["nodes"]
now = time.time()
started = time.time()
for slot in range(120):
    ts = now - 5 * slot - 1
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"
    samples = []
    for node in nodes:
        f = node["id"] % 10
        bad = f >= 8
        wave = math.sin(ts / 100 + node["id"]) * 0.3
        samples.append({
            "node_id": node["id"], "timestamp": stamp,
            "latency_ms": round((50 + (f - 7) * 20 if bad else 10 + 2 * f) * (1 + 0.2 * wave), 2),
            "throughput_gbps": round((8 - (f - 7) * 1.5 if bad else 9.5 - 0.1 * f) * (1 + 0.1 * wave), 2),
            "error_rate": round(max(0, (0.5 + (f - 7) * 0.3 if bad else 0.1 + 0.02 * f) + 0.1 * wave), 2),
        })
    request = urllib.request.Request(f"{base}/deployments/{deployment}/telemetry",
        data=json.dumps({"samples": samples}).encode(), headers={"content-type": "application/json"})
    assert urllib.request.urlopen(request).status == 202
print(f"   seeded 1,200,000 samples in {time.time() - started:.1f} s "
      f"({1_200_000 / (time.time() - started):,.0f} samples/s through the API)")
PY
echo "== GET /deployments/$large/bottlenecks (10,000 nodes, 10-minute window), 10 sequential requests"
for method in robust zscore; do
  times=$(for _ in $(seq 1 10); do
    curl -s -o /dev/null -w '%{time_total}\n' "$base/deployments/$large/bottlenecks?method=$method"
  done | sort -n)
  echo "   $method: median $(echo "$times" | sed -n 5p) s, min $(echo "$times" | head -1) s, max $(echo "$times" | tail -1) s"
done
curl -s "$base/deployments/$large/bottlenecks" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("   robust found %d bottlenecks among %d nodes, %d samples" % (r["total_bottlenecks"], r["nodes_analyzed"], r["samples_analyzed"]))'
