#!/usr/bin/env bash
# Fuzzes a release netorch-server on a fresh SQLite file against its own /openapi.json with
# schemathesis (pinned, installed from PyPI into a venv), for at most ST_MAX_TIME seconds of
# generation (default 150). Exits non-zero on any finding. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
venv="${NETORCH_ST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/netorch-schemathesis-$SCHEMATHESIS_VERSION}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

cargo build --release --locked --bin netorch-server
bin="${CARGO_TARGET_DIR:-target}/release/netorch-server"

work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the server picks a free port and logs it.
RUST_LOG=info "$bin" --bind 127.0.0.1:0 --database-url "sqlite://$work/contract.db" >"$work/server.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -oE 'listening on http://127\.0\.0\.1:[0-9]+' "$work/server.log" | head -1 | sed 's/listening on //' || true)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "contract check: the server did not start" >&2
  cat "$work/server.log" >&2
  exit 1
fi

echo "contract check: schemathesis $SCHEMATHESIS_VERSION against $url"
status=0
# Run from the scratch folder: schemathesis keeps its example database in the working folder.
config="$PWD/.ci/schemathesis.toml"
(cd "$work" && "$venv/bin/schemathesis" --config-file "$config" run "$url/openapi.json" \
  --max-time "${ST_MAX_TIME:-150}" --no-color) || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "contract check: the server died" >&2
  tail -50 "$work/server.log" >&2
  exit 1
fi
# A 500 is logged as "internal error"; a panic as "panicked". (actix's own ERROR lines about
# requests it refused as malformed, with a 400, are not the server's failures.)
if grep -qE "internal error|panicked" "$work/server.log"; then
  echo "contract check: the server failed internally:" >&2
  grep -E "internal error|panicked" "$work/server.log" | head -20 >&2
  status=1
fi
exit "$status"
