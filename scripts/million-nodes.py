#!/usr/bin/env python3
"""A fleet-scale run of the release binaries, bounded in time (issue 10, part 6).

    cargo build --release --bin netorch-server --bin netorch-worker
    scripts/million-nodes.py                                  # 1,000,000 nodes on SQLite, 1 worker
    scripts/million-nodes.py --nodes 200000 --workers 2 \\
        --postgres postgres://postgres@127.0.0.1:5432/test     # a scratch database beside `test`

Runs netorch-server without workers and N netorch-worker processes at time scale 1 on one
database, creates one deployment of --nodes nodes in one request, and prints:
- the creation time of the deployment;
- the time until every node is finished (RUNNING or FAILED), and transitions per second;
- the duration of every lifecycle tick and of every telemetry tick once every node runs (from the
  workers' debug log, which times each tick);
- p50/p99/max of GET /deployments/{id}, polled every 200 ms through the whole run;
- the peak resident memory (VmHWM) of the server and of each worker.
Stops after --telemetry-ticks telemetry ticks at full strength, or at --max-seconds.
Standard library only; loopback only.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def target_dir():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def request(base, method, path, body=None, timeout=600):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, json.loads(resp.read() or b"null")


def peak_rss_mb(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class Process:
    """A child whose stderr is read line by line into a list, with a callback per line."""

    def __init__(self, args, env, on_line=None):
        self.lines = []
        self.proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
        self.on_line = on_line
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            if self.on_line:
                self.on_line(line)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


TICK = re.compile(r"worker (\S+): (lifecycle|telemetry) tick: (.*) in (\d+) ms")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--postgres", help="a PostgreSQL URL; a scratch database netorch_fleet_run is made beside it")
    parser.add_argument("--telemetry-ticks", type=int, default=3,
                        help="telemetry ticks at full strength before stopping")
    parser.add_argument("--max-seconds", type=int, default=900)
    parser.add_argument("--bin-dir", type=Path,
                        help="where netorch-server and netorch-worker are (default: the release build)")
    args = parser.parse_args()

    binaries = args.bin_dir or target_dir() / "release"
    for name in ("netorch-server", "netorch-worker"):
        if not (binaries / name).exists():
            sys.exit(f"{binaries / name} is missing: cargo build --release --bin {name}")
    scratch = tempfile.mkdtemp(prefix="netorch-fleet-")
    if args.postgres:
        admin = args.postgres
        for sql in ("DROP DATABASE IF EXISTS netorch_fleet_run", "CREATE DATABASE netorch_fleet_run"):
            subprocess.run(["psql", admin, "-qc", sql], check=True)
        url = admin.rsplit("/", 1)[0] + "/netorch_fleet_run"
        backend = "postgres"
    else:
        url = f"sqlite://{scratch}/fleet.db"
        backend = "sqlite"

    env = dict(os.environ, RUST_LOG="info,netorch_workers=debug")
    server = Process([str(binaries / "netorch-server"), "--database-url", url, "--bind", "127.0.0.1:0",
                      "--workers", "none", "--max-nodes-per-deployment", str(args.nodes)], env)
    base = None
    deadline = time.time() + 60
    while base is None and time.time() < deadline:
        for line in list(server.lines):
            m = re.search(r"listening on (http://\S+?),?(\s|$)", line)
            if m:
                base = m.group(1).rstrip(",")
        time.sleep(0.05)
    if base is None:
        server.stop()
        sys.exit("the server did not start:\n" + "\n".join(server.lines))

    ticks = []  # (worker, kind, summary, ms, at)
    lock = threading.Lock()

    def on_worker_line(line):
        m = TICK.search(line)
        if m:
            with lock:
                ticks.append((m.group(1), m.group(2), m.group(3), int(m.group(4)), time.time()))

    workers = [
        Process([str(binaries / "netorch-worker"), "--database-url", url, "--name", f"fleet-{i}"],
                env, on_worker_line)
        for i in range(args.workers)
    ]
    print(f"backend {backend}, {args.nodes:,} nodes, {args.workers} worker(s), time scale 1, server {base}")
    try:
        started = time.time()
        status, created = request(base, "POST", "/deployments",
                                  {"name": "fleet", "target_node_count": args.nodes})
        creation = time.time() - started
        assert status == 201, created
        deployment = created["id"]
        print(f"creation of the deployment (one request): {creation:.2f} s")

        latencies, finished_at, full_ticks = [], None, 0
        run_started = time.time()
        while time.time() - run_started < args.max_seconds:
            t0 = time.time()
            _, detail = request(base, "GET", f"/deployments/{deployment}")
            latencies.append((time.time() - t0) * 1000)
            progress = detail["progress"]
            if finished_at is None and progress["finished"] == progress["total"]:
                finished_at = time.time()
                print(f"every node finished after {finished_at - run_started:.1f} s "
                      f"({detail['node_states']['RUNNING']:,} running, "
                      f"{detail['node_states']['FAILED']:,} failed)")
            if finished_at is not None:
                with lock:
                    full_ticks = sum(1 for t in ticks if t[1] == "telemetry" and t[4] > finished_at
                                     and f": {detail['node_states']['RUNNING']} running nodes" in t[2])
                if full_ticks >= args.telemetry_ticks:
                    break
            time.sleep(0.2)
        else:
            print(f"stopped at the bound of {args.max_seconds} s")

        with lock:
            seen = list(ticks)
        moved = 0
        for _, kind, summary, _, _ in seen:
            m = re.search(r"moved (\d+) of", summary)
            if kind == "lifecycle" and m:
                moved += int(m.group(1))
        if finished_at is not None:
            seconds = finished_at - run_started
            print(f"transitions: {moved:,} in {seconds:.1f} s = {moved / seconds:,.0f} per second")
        life = [t[3] for t in seen if t[1] == "lifecycle" and not t[2].startswith("examined 0 ")]
        if life:
            print(f"lifecycle ticks with work: {len(life)}, longest {max(life)} ms, "
                  f"median {percentile(life, 50)} ms")
            busiest = max((t for t in seen if t[1] == "lifecycle"),
                          key=lambda t: int(re.search(r"moved (\d+)", t[2]).group(1)))
            print(f"busiest lifecycle tick: {busiest[2]} in {busiest[3]} ms")
        for worker, kind, summary, ms, at in seen:
            if kind == "telemetry" and finished_at is not None and at > finished_at:
                print(f"telemetry tick ({worker}): {summary}: {ms} ms")
        print(f"GET /deployments/{{id}} during the run: {len(latencies)} requests, "
              f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
              f"max {max(latencies):.1f} ms")
        print(f"peak memory: server {peak_rss_mb(server.proc.pid):.0f} MB, " + ", ".join(
            f"worker {i} {peak_rss_mb(w.proc.pid):.0f} MB" for i, w in enumerate(workers)))
        if backend == "sqlite":
            size = sum(f.stat().st_size for f in Path(scratch).iterdir())
            print(f"database files: {size / 1e6:.0f} MB")
    finally:
        for w in workers:
            w.stop()
        server.stop()
        if args.postgres:
            subprocess.run(["psql", args.postgres, "-qc", "DROP DATABASE IF EXISTS netorch_fleet_run"])


if __name__ == "__main__":
    main()
