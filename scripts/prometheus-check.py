#!/usr/bin/env python3
"""A real Prometheus scrapes a real netorch-server and two netorch-workers while a deployment
rolls out, and every metric the issue lists must be there and, where it counts work, move.

Runs the release binaries (`cargo build --release --bin netorch-server --bin netorch-worker`)
on a scratch SQLite file with Debian's `prometheus`, all on loopback, for at most about a
minute; prints what Prometheus answered and exits 1 if anything is missing or did not change.

    python3 scripts/prometheus-check.py [--target-dir DIR]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import http, start  # noqa: E402


def query(prometheus, expr):
    """The instant vector of `expr` as {labels: value}."""
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = http("GET", url)
    return {
        json.dumps(item["metric"], sort_keys=True): float(item["value"][1])
        for item in answer["data"]["result"]
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--target-dir",
        default=os.environ.get("CARGO_TARGET_DIR", "target"),
        help="where the release binaries are (default: $CARGO_TARGET_DIR or target)",
    )
    args = parser.parse_args()
    binaries = os.path.join(args.target_dir, "release")
    prometheus_binary = shutil.which("prometheus")
    if prometheus_binary is None:
        raise SystemExit("prometheus is not installed (apt-get install prometheus)")
    work = tempfile.mkdtemp(prefix="netorch-prometheus-")
    database = f"sqlite://{work}/netorch.db"
    processes = []
    try:
        common = ["--database-url", database]
        server, server_address = start(
            [f"{binaries}/netorch-server", *common, "--workers", "none", "--bind", "127.0.0.1:0"],
            r"listening on http://([^\s,]+)",
            f"{work}/server.log",
        )
        processes.append(server)
        workers = []
        for name in ["worker-a", "worker-b"]:
            worker, address = start(
                [f"{binaries}/netorch-worker", *common, "--time-scale", "20", "--name", name,
                 "--metrics-bind", "127.0.0.1:0"],
                r"metrics at http://(\S+)/metrics",
                f"{work}/{name}.log",
            )
            processes.append(worker)
            workers.append(address)
        config = f"{work}/prometheus.yml"
        with open(config, "w") as f:
            f.write(
                "global: {scrape_interval: 1s}\n"
                "scrape_configs:\n"
                f"  - job_name: netorch-server\n    static_configs: [{{targets: ['{server_address}']}}]\n"
                f"  - job_name: netorch-worker\n    static_configs: [{{targets: {json.dumps(workers)}}}]\n"
            )
        prometheus_port = 19090 + os.getpid() % 1000
        prometheus, prometheus_address = start(
            [prometheus_binary, f"--config.file={config}", f"--storage.tsdb.path={work}/tsdb",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            r"(Server is ready to receive web requests)",
            f"{work}/prometheus.log",
        )
        processes.append(prometheus)
        prometheus_address = f"127.0.0.1:{prometheus_port}"
        print(f"server {server_address}, workers {workers}, prometheus {prometheus_address}")

        # A baseline scrape of every target before anything happens.
        deadline = time.time() + 30
        while sum(query(prometheus_address, "up").values()) < 3:
            if time.time() > deadline:
                raise SystemExit(f"Prometheus did not reach its three targets: {query(prometheus_address, 'up')}")
            time.sleep(0.5)
        time.sleep(2)

        deployment = http("POST", f"http://{server_address}/deployments",
                          {"name": "scraped", "target_node_count": 200})
        url = f"http://{server_address}/deployments/{deployment['id']}"
        deadline = time.time() + 45
        while True:
            states = http("GET", url)["node_states"]
            if states["RUNNING"] + states["FAILED"] == 200:
                break
            if time.time() > deadline:
                raise SystemExit(f"the rollout did not finish: {states}")
            time.sleep(0.5)
        http("POST", f"{url}/telemetry", {"samples": [
            {"node_id": n["id"], "latency_ms": 5.0, "throughput_gbps": 9.0, "error_rate": 0.1}
            for n in http("GET", f"{url}/nodes?limit=10")["nodes"]]})
        http("GET", f"{url}/bottlenecks")
        time.sleep(4)  # a few scrapes of the settled fleet

        window = "2m"
        # (what, PromQL, check on the summed value)
        checks = [
            ("three targets up", "sum(up)", lambda v: v == 3),
            ("HTTP requests by route", 'sum(increase(netorch_http_requests_total{route="/deployments/{deployment_id}"}[%s]))' % window, lambda v: v > 0),
            ("HTTP latency histogram", "sum(increase(netorch_http_request_duration_seconds_count[%s]))" % window, lambda v: v > 0),
            ("requests in flight", "sum(netorch_http_requests_in_flight)", lambda v: v >= 0),
            ("transitions to RUNNING", 'sum(increase(netorch_lifecycle_transitions_total{state="RUNNING"}[%s]))' % window, lambda v: v > 0),
            ("transitions to PROVISIONING", 'sum(increase(netorch_lifecycle_transitions_total{state="PROVISIONING"}[%s]))' % window, lambda v: v > 0),
            ("node timeouts", "sum(netorch_lifecycle_timeouts_total)", lambda v: v >= 0),
            ("auto retries", "sum(netorch_lifecycle_auto_retries_total)", lambda v: v >= 0),
            ("lifecycle tick histogram", "sum(increase(netorch_lifecycle_tick_duration_seconds_count[%s]))" % window, lambda v: v > 0),
            ("due-node backlog", "max(netorch_lifecycle_due_backlog)", lambda v: v >= 0),
            ("nodes RUNNING or FAILED (server)", 'sum(netorch_nodes{job="netorch-server",state=~"RUNNING|FAILED"})', lambda v: v == 200),
            ("deployments settled (server)", 'sum(netorch_deployments{job="netorch-server",status=~"COMPLETE|DEGRADED"})', lambda v: v == 1),
            ("samples from workers", 'sum(increase(netorch_telemetry_samples_written_total{source="worker"}[%s]))' % window, lambda v: v > 0),
            ("samples pushed", 'sum(increase(netorch_telemetry_samples_written_total{source="push"}[%s]))' % window, lambda v: v > 0),
            ("duplicates skipped", "sum(netorch_telemetry_duplicates_skipped_total)", lambda v: v >= 0),
            ("telemetry tick histogram", "sum(increase(netorch_telemetry_tick_duration_seconds_count[%s]))" % window, lambda v: v > 0),
            ("slot lag", "max(netorch_telemetry_slot_lag_seconds)", lambda v: v >= 0),
            ("expiry", "sum(netorch_telemetry_expired_rows_total)", lambda v: v >= 0),
            ("report histogram", "sum(increase(netorch_report_duration_seconds_count[%s]))" % window, lambda v: v > 0),
            ("pool connections", "sum(netorch_database_connections_in_use + netorch_database_connections_idle)", lambda v: v > 0),
            ("pool waits", "sum(netorch_database_connection_waits_total)", lambda v: v >= 0),
            ("database errors by kind", "count(netorch_database_errors_total)", lambda v: v >= 6),
            ("locked retries", "sum(netorch_database_locked_retries_total)", lambda v: v >= 0),
            ("process CPU", "sum(increase(process_cpu_seconds_total[%s]))" % window, lambda v: v > 0),
            ("build info", "count(netorch_build_info)", lambda v: v == 3),
        ]
        failed = 0
        for what, expr, check in checks:
            values = query(prometheus_address, expr)
            total = sum(values.values()) if values else None
            ok = total is not None and check(total)
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {what}: {total}    {expr}")
        if failed:
            print(f"{failed} checks failed; logs in {work}", file=sys.stderr)
            return 1
        print("every metric is scraped, and the counters moved with the rollout")
        return 0
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if not os.environ.get("NETORCH_KEEP_WORK"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
