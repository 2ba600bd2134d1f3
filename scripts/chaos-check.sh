#!/usr/bin/env bash
# The bounded chaos run (scripts/chaos.py) against the release binaries, on a fresh SQLite file
# and on a fresh schema of the PostgreSQL server named by NETORCH_TEST_POSTGRES_URL: at most
# CHAOS_SECONDS (default 45) of chaos a backend, then settling and the invariant checks.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin netorch-server --bin netorch-worker
bin_dir="${CARGO_TARGET_DIR:-target}/release"
seconds="${CHAOS_SECONDS:-45}"
work=$(mktemp -d)
schema="netorch_chaos_$$"
pg="${NETORCH_TEST_POSTGRES_URL:-}"
cleanup() {
  rm -rf "$work"
  if [ -n "$pg" ]; then psql -X -q "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

timeout 300 python3 scripts/chaos.py --bin-dir "$bin_dir" --seconds "$seconds" \
  --database-url "sqlite://$work/chaos.db"
if [ -n "$pg" ]; then
  psql -X -q "$pg" -c "CREATE SCHEMA $schema"
  separator='?'; case "$pg" in *\?*) separator='&';; esac
  timeout 300 python3 scripts/chaos.py --bin-dir "$bin_dir" --seconds "$seconds" \
    --database-url "${pg}${separator}options=-csearch_path%3D${schema}"
else
  echo "chaos check: NETORCH_TEST_POSTGRES_URL is not set" >&2
  exit 1
fi
