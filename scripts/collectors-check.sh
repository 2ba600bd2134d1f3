#!/usr/bin/env bash
# The collectors' client libraries from PyPI (pinned, in a venv) against the release server
# (scripts/collectors-check.py), on a fresh SQLite file and on a fresh schema of the PostgreSQL
# server named by NETORCH_TEST_POSTGRES_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${NETORCH_COLLECTORS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/netorch-collectors-1}"
if [ ! -x "$venv/bin/python" ] ||
   ! "$venv/bin/python" -c "import influxdb_client, influxdb, opentelemetry.exporter.otlp.proto.http" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    "influxdb-client==1.50.0" "influxdb==5.3.2" \
    "opentelemetry-sdk==1.45.2" "opentelemetry-exporter-otlp-proto-http==1.45.2"
fi
cargo build --release --locked -q --bin netorch-server
bin_dir="${CARGO_TARGET_DIR:-target}/release"
work=$(mktemp -d)
schema="netorch_collectors_$$"
pg="${NETORCH_TEST_POSTGRES_URL:-}"
cleanup() {
  rm -rf "$work"
  if [ -n "$pg" ]; then psql -X -q "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

timeout 120 "$venv/bin/python" scripts/collectors-check.py --bin-dir "$bin_dir" \
  --database-url "sqlite://$work/collectors.db"
if [ -n "$pg" ]; then
  psql -X -q "$pg" -c "CREATE SCHEMA $schema"
  separator='?'; case "$pg" in *\?*) separator='&';; esac
  timeout 120 "$venv/bin/python" scripts/collectors-check.py --bin-dir "$bin_dir" \
    --database-url "${pg}${separator}options=-csearch_path%3D${schema}"
else
  echo "collectors check: NETORCH_TEST_POSTGRES_URL is not set" >&2
  exit 1
fi
