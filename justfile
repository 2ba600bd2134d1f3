# netorch's everyday commands. `just --list` shows them; every recipe works without `just` too
# (copy the cargo line).

postgres_url := env_var_or_default("NETORCH_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")

# List the recipes
default:
    @just --list

# Run every test on SQLite only
test:
    cargo test --workspace

# Run every test on SQLite and on the local PostgreSQL
test-all:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo test --workspace

# Format the code
fmt:
    cargo fmt --all

# Lint the way CI does (warnings are errors)
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Run exactly what CI runs
ci:
    bash .ci/run

# Measure telemetry ingest on SQLite and PostgreSQL
bench-ingest:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_storage --bench ingest

# Measure bottleneck analysis of 10,000 nodes x 120 samples
bench-analysis:
    cargo bench -p netorch_analytics --bench analysis

# Measure worker ticks over 100,000 nodes on SQLite and PostgreSQL
bench-ticks:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_workers --bench ticks

# The telemetry export keeping up with 100,000 nodes on PostgreSQL (needs victoria-metrics).
# 1,000 nodes through a `command` provisioner profile (issue 31): runs a second, the worker's cost a
# run, the lifecycle ticks while runs are in flight; SQLite and PostgreSQL.
bench-provisioners:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_workers --bench provisioners

bench-export:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_workers --bench export

# A million nodes through the release binaries on SQLite (about ten minutes)
bench-fleet:
    cargo build --release --bin netorch-server --bin netorch-worker
    python3 scripts/million-nodes.py

# Reports, series and per-node reads over 10,000 and 100,000 nodes, against the raw-sample path
bench-telemetry:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_api --bench telemetry_queries

# Three simulated days of 1,000 nodes with rollups and expiry (SQLite): the database levels off
long-run days="3" minutes_hours="24":
    NETORCH_LONG_RUN_DAYS={{days}} NETORCH_LONG_RUN_MINUTES_HOURS={{minutes_hours}} cargo bench -p netorch_api --bench long_run

# PostgreSQL rollup rows under the telemetry worker's rewrites: full pages against fillfactor 50
bench-rollup-churn:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} cargo bench -p netorch_storage --bench rollup_churn

# What a full-strength telemetry tick of 950,000 nodes costs SQLite itself, beside the product's path.
bench-tick-floor:
    cargo bench -p netorch_storage --bench sqlite_tick_floor

# Load-test netorch-server over loopback with wrk (SQLite; pass a URL for PostgreSQL)
bench-load url="":
    bash scripts/load-bench.sh {{url}}

# Run the server with fast simulated hardware, for trying the API by hand
demo:
    cargo run --release --bin netorch-server -- --time-scale 10

# Fuzz a release server against its own OpenAPI document (schemathesis, as CI does)
contract:
    bash scripts/contract-check.sh

# Kill workers during rollouts, pushes and deletes, then check the invariants (both backends)
chaos:
    NETORCH_TEST_POSTGRES_URL={{postgres_url}} bash scripts/chaos-check.sh

# A real Prometheus scrapes a release server and two workers through a rollout (as CI does)
prometheus:
    cargo build --release --bin netorch-server --bin netorch-worker
    python3 scripts/prometheus-check.py --target-dir "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"

# Health latency and memory under 16 concurrent heavy reports
bench-reports:
    cargo build --release --bin netorch-server
    python3 scripts/report-load.py --binary "$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/netorch-server"

# The dashboard in Debian's headless Chromium: walk, phone, roles, accessibility, speed
browser:
    bash scripts/browser-check.sh

# Three servers and two workers behind HAProxy on PostgreSQL, while processes die (docs/CLUSTER.md).
cluster:
    bash scripts/cluster-check
