#!/usr/bin/env python3
"""Several machines' worth of netorch on loopback, through HAProxy, while processes die.

One PostgreSQL database (a fresh one, dropped at the end), three netorch-server processes with
--workers none, two netorch-worker processes, and HAProxy in front of the servers with health
checks on /ready, configured as docs/CLUSTER.md shows an operator. Through HAProxy it runs a
10,000-node rollout with 8 telemetry pushers, 20 event-stream clients (reconnecting with
Last-Event-ID, as a browser's EventSource does) and report and listing readers; meanwhile one
server is killed with SIGKILL, another drained with SIGTERM, both restarted, and a worker
killed and restarted. Then it asserts:

- every push answered 2xx is stored, none twice; every transition happened once;
- every stream client saw every event of the deployment exactly once, in order, across its
  reconnects;
- no client saw a 5xx but the 503s a draining server is documented to give;
- a node listing read from any server after a node changed on another is never older than
  that change;
- the workers export every stored sample to VictoriaMetrics (Debian's victoria-metrics) by
  remote write, although the worker holding the export is the one killed (the other takes over
  within 30 s) and VictoriaMetrics is stopped for a minute mid-run: once the export has caught
  up, VictoriaMetrics holds exactly netorch's samples, node by node, for each of the three
  series.

Then, with keys on and --rate-limit 20 on the three servers: a key sending as fast as it can
through HAProxy gets 20 requests a second (± 20 %), not 60; and a key revoked with
`netorch-server keys revoke` is refused by every server within a second.

Usage: scripts/cluster-check (installs HAProxy, builds, runs this), or
    scripts/cluster-check.py --bin-dir target/release [--database-url postgres://...]
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

FAILURES = []
LOCK = threading.Lock()
# The 503s a server is documented to give while it stops (docs/API.md, docs/RELIABILITY.md).
DRAINING_503 = ("shutting down", "draining")


def fail(message):
    with LOCK:
        FAILURES.append(message)
    print(f"FAIL: {message}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    """HTTP/1.1 with keep-alive to one address, as a long-lived client holds a connection."""

    def __init__(self, port, token=None, timeout=30):
        self.port, self.token, self.timeout = port, token, timeout
        self.conn = None

    def call(self, method, path, body=None):
        """(status, parsed JSON or raw bytes); (0, error) when the connection failed."""
        headers = {"content-type": "application/json"} if body is not None else {}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                           timeout=self.timeout)
                self.conn.request(method, path, body=data, headers=headers)
                response = self.conn.getresponse()
                raw = response.read()
                if response.getheader("connection", "").lower() == "close":
                    self.close()
                try:
                    return response.status, json.loads(raw) if raw else None
                except ValueError:
                    return response.status, raw
            except (OSError, http.client.HTTPException) as error:
                self.close()
                # A kept connection the server closed meanwhile: once more on a new one.
                if attempt == 1:
                    return 0, str(error)
        return 0, "unreachable"

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def judged(where, method, path, status, body, counts):
    """Counts an answer; a 5xx other than a draining server's 503 is a failure."""
    with LOCK:
        counts[status] = counts.get(status, 0) + 1
    if status >= 500:
        text = json.dumps(body) if not isinstance(body, (bytes, str)) else str(body)
        if status == 503 and any(word in text.lower() for word in DRAINING_503):
            with LOCK:
                counts["503 draining"] = counts.get("503 draining", 0) + 1
        else:
            fail(f"{where}: {method} {path} answered {status}: {text[:300]}")


class Database:
    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        out = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", self.url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]


class Victoria:
    """A VictoriaMetrics single node on loopback, stopped and started on the same data."""

    def __init__(self, logs):
        self.port = free_port()
        self.data = os.path.join(logs, "victoria-data")
        self.log = os.path.join(logs, "victoria.log")
        self.process = None

    @property
    def write_url(self):
        return f"http://127.0.0.1:{self.port}/api/v1/write"

    def start(self):
        log = open(self.log, "ab")
        self.process = subprocess.Popen(
            ["victoria-metrics", f"-storageDataPath={self.data}",
             f"-httpListenAddr=127.0.0.1:{self.port}",
             # Delivery is at least once: a sample sent twice is kept once.
             "-dedup.minScrapeInterval=1ms", "-search.latencyOffset=0s",
             "-retentionPeriod=1y"], stdout=log, stderr=log)
        deadline = time.time() + 30
        while time.time() < deadline:
            status, _ = Client(self.port, timeout=2).call("GET", "/health")
            if status == 200:
                return
            time.sleep(0.1)
        fail("victoria-metrics did not start")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def points(self, metric, deployment):
        """Points held per node id of `deployment` for `metric`."""
        client = Client(self.port, timeout=60)
        client.call("GET", "/internal/force_flush")
        query = urllib.parse.urlencode({
            "query": f'count_over_time({metric}{{deployment="{deployment}"}}[2h])',
            "time": str(int(time.time()) + 1)})
        status, body = client.call("GET", f"/api/v1/query?{query}")
        if status != 200:
            fail(f"victoria-metrics query: {status} {body}")
            return {}
        return {int(r["metric"]["node_id"]): int(r["value"][1]) for r in body["data"]["result"]}


class Cluster:
    """The processes, their logs, and how to kill and restart them."""

    def __init__(self, bins, database_url, logs, server_args, worker_args):
        self.bins, self.url, self.logs = bins, database_url, logs
        self.server_args, self.worker_args = server_args, worker_args
        self.ports = [free_port() for _ in range(3)]
        self.servers = [None, None, None]
        self.workers = {}
        self.generation = 0

    def start_server(self, i):
        self.generation += 1
        log = open(os.path.join(self.logs, f"server{i}.log"), "ab")
        self.servers[i] = subprocess.Popen(
            [os.path.join(self.bins, "netorch-server"), "--database-url", self.url,
             "--bind", f"127.0.0.1:{self.ports[i]}", "--workers", "none",
             "--shutdown-grace", "1", *self.server_args], stdout=log, stderr=log)
        wait_ready(self.ports[i], self.servers[i], f"server {i}")

    def start_worker(self, name):
        log = open(os.path.join(self.logs, f"{name}.log"), "ab")
        self.workers[name] = subprocess.Popen(
            [os.path.join(self.bins, "netorch-worker"), "--database-url", self.url,
             "--name", name, *self.worker_args], stdout=log, stderr=log)

    def stop(self):
        for process in [*self.servers, *self.workers.values()]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.servers, *self.workers.values()]:
            if process is not None:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()


def wait_ready(port, process, what, timeout=30):
    deadline = time.time() + timeout
    client = Client(port, timeout=2)
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"{what} exited {process.returncode}")
        status, _ = client.call("GET", "/ready")
        if status == 200:
            client.close()
            return
        time.sleep(0.1)
    sys.exit(f"{what} not ready in {timeout} s")


HAPROXY_CONFIG = """# HAProxy in front of netorch-server processes (docs/CLUSTER.md explains each line).
global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 65s
    timeout server 65s
    timeout http-keep-alive 5s
    # Another server when a connection is refused, a server dies before answering, or a
    # stopping server answers 503: netorch answers 503 only for what it did not do.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response 503
frontend netorch
    bind 127.0.0.1:{port}
    default_backend netorch
backend netorch
    balance roundrobin
    # Creations are not replayed: a server killed after committing one must not make two.
    http-request disable-l7-retry if METH_POST {{ path /deployments /silences /receivers }}
    option httpchk GET /ready
    http-check expect status 200
    default-server inter 500ms fall 1 rise 2 on-marked-down shutdown-sessions
{servers}
"""


def start_haproxy(cluster, logs, ports=None, name="haproxy"):
    port = free_port()
    servers = "\n".join(f"    server s{i} 127.0.0.1:{p} check"
                        for i, p in enumerate(ports or cluster.ports))
    path = os.path.join(logs, f"{name}.cfg")
    with open(path, "w") as f:
        f.write(HAPROXY_CONFIG.format(port=port, servers=servers))
    log = open(os.path.join(logs, f"{name}.log"), "ab")
    process = subprocess.Popen(["haproxy", "-db", "-f", path], stdout=log, stderr=log)
    wait_ready(port, process, "haproxy")
    return process, port


def stream_client(port, deployment, seen, stop, reconnects):
    """Follows the deployment's events as EventSource does: on a drop, again with
    Last-Event-ID. Ends after DEPLOYMENT_DELETED."""
    last = None
    while not stop.is_set():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=40)
        headers = {"accept": "text/event-stream"}
        if last is not None:
            headers["last-event-id"] = str(last)
        try:
            conn.request("GET", f"/deployments/{deployment}/events/stream", headers=headers)
            response = conn.getresponse()
            if response.status != 200:
                body = response.read()
                if response.status == 404:
                    return  # deleted, and nothing after the cursor
                judged("stream", "GET", "stream", response.status, body, {})
                time.sleep(0.2)
                continue
            event_id, kind = None, None
            while True:
                line = response.readline()
                if not line:
                    break
                line = line.decode().rstrip("\r\n")
                if line.startswith("id: "):
                    event_id = int(line[4:])
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line == "":
                    if event_id is not None:
                        seen.append(event_id)
                        last = event_id
                        if kind == "DEPLOYMENT_DELETED":
                            return
                    elif kind == "end":
                        pass  # the server stops: reconnect
                    event_id, kind = None, None
        except (OSError, http.client.HTTPException):
            pass
        finally:
            conn.close()
        reconnects[0] += 1
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL database the check may create another beside")
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=4)
    parser.add_argument("--max-in-flight", type=int, default=800)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--http-workers", type=int, default=None,
                        help="each server's --http-workers (default: one per core)")
    parser.add_argument("--victoria-outage", type=float, default=60,
                        help="seconds VictoriaMetrics is stopped for mid-run")
    parser.add_argument("--bench", action="store_true",
                        help="instead of the checks: wrk against one server alone and against "
                             "HAProxy in front of three (docs/PERFORMANCE.md)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    logs = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"netorch-cluster-{os.getpid()}")
    os.makedirs(logs, exist_ok=True)
    name = f"netorch_cluster_{os.getpid()}"
    admin = Database(args.database_url)
    admin.rows(f"CREATE DATABASE {name}")
    parsed = urllib.parse.urlsplit(args.database_url)
    url = urllib.parse.urlunsplit(parsed._replace(path=f"/{name}"))
    print(f"cluster: seed {seed}, database {name}, logs in {logs}", flush=True)
    victoria = Victoria(logs)
    cluster = Cluster(args.bin_dir, url, logs,
                      ["--max-nodes-per-deployment", str(args.nodes)]
                      + (["--http-workers", str(args.http_workers)] if args.http_workers else []),
                      ["--time-scale", str(args.time_scale),
                       "--export-remote-write-url", victoria.write_url])
    haproxy = None
    try:
        victoria.start()
        for i in range(3):
            cluster.start_server(i)
        for worker in ("w1", "w2"):
            cluster.start_worker(worker)
        haproxy, port = start_haproxy(cluster, logs)
        if args.bench:
            single, single_port = start_haproxy(cluster, logs, cluster.ports[:1], "haproxy-one")
            try:
                print(json.dumps(bench(cluster, port, single_port), indent=2), flush=True)
            finally:
                single.terminate()
            return 0
        measured = rollout(cluster, port, Database(url), args, rng, victoria)
        measured.update(limits_and_revocation(cluster, haproxy, port, Database(url), logs))
        print(json.dumps(measured, indent=2), flush=True)
    finally:
        if haproxy is not None:
            haproxy.terminate()
        cluster.stop()
        victoria.stop()
        admin.rows(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    if FAILURES:
        print(f"cluster check: {len(FAILURES)} failures (seed {seed}, logs in {logs})",
              file=sys.stderr)
        return 1
    print("cluster check: every invariant holds", flush=True)
    return 0


def rollout(cluster, port, db, args, rng, victoria):
    """The rollout through HAProxy while processes die; the invariants after."""
    lb = Client(port)
    status, created = lb.call("POST", "/deployments", {
        "name": "cluster", "target_node_count": args.nodes,
        "max_in_flight": args.max_in_flight, "telemetry_origin": "pushed"})
    assert status == 201, (status, created)
    deployment = created["id"]
    nodes = [(n["id"], n["node_id"]) for n in lb.call(
        "GET", f"/deployments/{deployment}/nodes")[1]["nodes"]]
    stop = threading.Event()
    counts = {}
    accepted = []  # (node id, timestamp) answered 202
    fresh = {"checked": 0}

    last_stamp = [0]

    def pusher(index):
        client = Client(port)
        local = random.Random(rng.random() + index)
        while not stop.is_set():
            batch = local.sample(nodes, 50)
            # A distinct instant per request, in whole microseconds, a second in the past.
            with LOCK:
                micros = max(int(time.time() * 1e6) - 1_000_000, last_stamp[0] + 1)
                last_stamp[0] = micros
            stamp = (datetime(1970, 1, 1, tzinfo=timezone.utc)
                     + timedelta(microseconds=micros)).isoformat()
            samples = [{"node_id": node, "timestamp": stamp, "latency_ms": 10.0,
                        "throughput_gbps": 9.0, "error_rate": 0.1} for node, _ in batch]
            status, body = client.call("POST", f"/deployments/{deployment}/telemetry",
                                       {"samples": samples})
            judged("pusher", "POST", "telemetry", status, body, counts)
            if status == 202:
                with LOCK:
                    accepted.extend((node, micros) for node, _ in batch)
            time.sleep(0.05)

    def reader(index):
        client = Client(port)
        paths = [f"/deployments/{deployment}", f"/deployments/{deployment}/nodes?state=FAILED",
                 f"/deployments/{deployment}/nodes?skip=5000&limit=100", "/deployments",
                 f"/deployments/{deployment}/bottlenecks", "/fleet"]
        while not stop.is_set():
            path = paths[index % len(paths)] if index < len(paths) else rng.choice(paths)
            status, body = client.call("GET", path)
            judged("reader", "GET", path, status, body, counts)
            time.sleep(0.02)

    def freshness():
        # A retry on one server, then the listing read from the two others directly: the
        # node's attempt there is never older than the retry's.
        clients = [Client(p) for p in cluster.ports]
        while not stop.is_set():
            status, failed = clients[0].call(
                "GET", f"/deployments/{deployment}/nodes?state=FAILED&limit=20")
            targets = (failed or {}).get("nodes", []) if status == 200 else []
            if not targets:
                time.sleep(0.2)
                continue
            node = rng.choice(targets)
            on = rng.randrange(3)
            status, retried = clients[on].call(
                "POST", f"/deployments/{deployment}/nodes/{node['id']}/retry")
            if status != 200:
                time.sleep(0.1)
                continue
            index = int(node["node_id"].split("-")[1]) - 1
            for other in range(3):
                if other == on:
                    continue
                status, page = clients[other].call(
                    "GET", f"/deployments/{deployment}/nodes?skip={index}&limit=1")
                if status != 200:
                    continue  # that server is down or stopping
                listed = page["nodes"][0]
                if listed["id"] != node["id"] or listed["attempt"] < retried["attempt"]:
                    fail(f"server {other} listed {listed} after server {on} retried it to "
                         f"attempt {retried['attempt']}")
                with LOCK:
                    fresh["checked"] += 1
            time.sleep(0.05)

    streams = [([], [0]) for _ in range(20)]
    stream_stop = threading.Event()
    stream_threads = [threading.Thread(target=stream_client,
                                       args=(port, deployment, seen, stream_stop, reconnects))
                      for seen, reconnects in streams]
    threads = ([threading.Thread(target=pusher, args=(i,)) for i in range(8)]
               + [threading.Thread(target=reader, args=(i,)) for i in range(6)]
               + [threading.Thread(target=freshness)])
    for thread in stream_threads + threads:
        thread.start()

    started = time.time()
    # The faults, each a few seconds apart while the rollout runs.
    time.sleep(4)
    print("cluster: kill -9 server 0", flush=True)
    cluster.servers[0].send_signal(signal.SIGKILL)
    cluster.servers[0].wait()
    time.sleep(3)
    cluster.start_server(0)
    print("cluster: SIGTERM server 1 (drain)", flush=True)
    cluster.servers[1].send_signal(signal.SIGTERM)
    if cluster.servers[1].wait(timeout=30) != 0:
        fail(f"server 1 exited {cluster.servers[1].returncode} after SIGTERM")
    cluster.start_server(1)
    time.sleep(2)
    # The worker holding the export is the one killed: the other must take it over.
    holder = export_holder(db)
    victim = holder if holder in cluster.workers else "w1"
    print(f"cluster: kill -9 worker {victim} (export holder: {holder})", flush=True)
    cluster.workers[victim].send_signal(signal.SIGKILL)
    cluster.workers[victim].wait()
    killed_at = time.time()
    takeover = {}

    def watch_takeover():
        while time.time() - killed_at < 60:
            now = export_holder(db)
            if now is not None and now != victim:
                takeover["seconds"] = time.time() - killed_at
                takeover["by"] = now
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_takeover)
    watcher.start()
    time.sleep(2)
    cluster.start_worker(f"{victim}b")
    print(f"cluster: VictoriaMetrics stopped for {args.victoria_outage:.0f} s", flush=True)
    victoria.stop()
    restart = threading.Timer(args.victoria_outage, victoria.start)
    restart.start()
    # The rollout finishes (every node RUNNING or FAILED, retried ones included).
    deadline = time.time() + 300
    while time.time() < deadline:
        status, d = lb.call("GET", f"/deployments/{deployment}")
        if status == 200 and d["progress"]["finished"] == d["progress"]["total"] \
                and d["node_states"]["PENDING"] == 0:
            break
        time.sleep(0.5)
    else:
        fail(f"the rollout did not finish: {d}")
    rollout_seconds = time.time() - started
    stop.set()
    for thread in threads:
        thread.join()
    pushes_ended = int(time.time() * 1e6)
    watcher.join()
    if "seconds" not in takeover or takeover["seconds"] >= 30:
        fail(f"no worker took the export over within 30 s of {victim}'s kill -9: {takeover}")
    restart.join()

    # Every push answered 202 is stored (a push whose answer was lost to a killed server may
    # be stored too), none twice.
    rows = db.rows(f"SELECT node_id, sampled_at FROM telemetry_samples WHERE deployment_id = "
                   f"{deployment}")
    stored = {(int(node), int(at)) for node, at in rows}
    if len(stored) != len(rows):
        fail(f"{len(rows) - len(stored)} samples stored twice")
    lost = set(accepted) - stored
    if lost:
        fail(f"{len(lost)} of {len(set(accepted))} samples answered 202 are not stored, "
             f"e.g. {sorted(lost)[:3]}")
    # Every transition once: no (node, from, to, attempt) twice.
    twice = db.rows(
        "SELECT node_id, metadata FROM events WHERE deployment_id = "
        f"{deployment} AND event_type = 'STATE_CHANGE' GROUP BY node_id, metadata "
        "HAVING count(*) > 1 LIMIT 5")
    if twice:
        fail(f"transitions recorded twice: {twice}")

    exported = export_matches(db, victoria, deployment, pushes_ended)

    # Deleted: every stream ends with the deployment's last event.
    status, _ = lb.call("DELETE", f"/deployments/{deployment}")
    if status != 204:
        fail(f"delete answered {status}")
    for thread in stream_threads:
        thread.join(timeout=60)
    stream_stop.set()
    expected = [int(r[0]) for r in db.rows(
        f"SELECT id FROM events WHERE deployment_id = {deployment} ORDER BY id")]
    for i, (seen, _) in enumerate(streams):
        if seen != expected:
            missing = len(set(expected) - set(seen))
            dup = len(seen) - len(set(seen))
            order = seen == sorted(seen)
            fail(f"stream client {i} saw {len(seen)} events of {len(expected)}: {missing} "
                 f"missing, {dup} twice, in order: {order}")
    return {
        "nodes": args.nodes,
        "rollout seconds (with the faults)": round(rollout_seconds, 1),
        "samples answered 202 (all stored)": len(set(accepted)),
        "samples stored": len(stored),
        "events, seen by each of 20 stream clients": len(expected),
        "stream reconnects": sum(r[0] for _, r in streams),
        "answers by status": {str(k): v for k, v in sorted(counts.items(), key=str)},
        "cross-server listing checks": fresh["checked"],
        "export takeover after kill -9 (s)": round(takeover.get("seconds", -1), 1),
        **exported,
    }


def export_holder(db):
    rows = db.rows("SELECT holder FROM export_cursors WHERE lease_until > "
                   "(extract(epoch from clock_timestamp()) * 1e6)::bigint")
    return rows[0][0] if rows else None


def export_matches(db, victoria, deployment, pushes_ended):
    """Waits for the export to catch up past the end of the pushes, then compares, node by node
    and series by series, VictoriaMetrics' points with netorch's samples."""
    started = time.time()
    while time.time() - started < 180:
        rows = db.rows("SELECT caught_up_at, coalesce(last_error, '') FROM export_cursors")
        if rows and rows[0][0] and int(rows[0][0]) > pushes_ended:
            break
        time.sleep(0.5)
    else:
        fail(f"the export did not catch up within 180 s: {rows}")
    caught_up = time.time() - started
    # Remote write carries milliseconds: a node's samples less than a millisecond apart are one
    # point there (the export sends the first), so netorch's count is of distinct milliseconds.
    stored = {int(node): int(count) for node, count in db.rows(
        "SELECT node_id, count(DISTINCT sampled_at / 1000) FROM telemetry_samples "
        f"WHERE deployment_id = {deployment} GROUP BY node_id")}
    for metric in ("netorch_latency_ms", "netorch_throughput_gbps", "netorch_error_rate"):
        held = victoria.points(metric, deployment)
        if held != stored:
            differ = [n for n in set(held) | set(stored) if held.get(n) != stored.get(n)]
            fail(f"{metric}: VictoriaMetrics holds other counts than netorch for {len(differ)} "
                 f"of {len(stored)} nodes, e.g. "
                 f"{[(n, held.get(n), stored.get(n)) for n in sorted(differ)[:3]]}")
    exported = int(db.rows("SELECT exported FROM export_cursors")[0][0])
    return {
        "samples exported (at least once)": exported,
        "export caught up after the pushes ended (s)": round(caught_up, 1),
        "nodes whose three series match": len(stored),
    }


def wrk(port, path, seconds=5, connections=32):
    """Requests a second and p99 (ms) of `wrk -t2 -c{connections}` on `path`."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency",
                          f"http://127.0.0.1:{port}{path}"],
                         check=True, capture_output=True, text=True).stdout
    rate = float(next(l for l in out.splitlines() if l.startswith("Requests/sec")).split()[1])
    p99 = next(l for l in out.splitlines() if l.strip().startswith("99%")).split()[1]
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if p99.endswith(unit):
            ms = float(p99[:-len(unit)]) * scale
            break
    errors = [l for l in out.splitlines() if "Non-2xx" in l or "Socket errors" in l]
    return {"req/s": round(rate), "p99 ms": round(ms, 2), "errors": errors}


def bench(cluster, port, single_port):
    """wrk on a deployment's reads, alternating: one server alone, HAProxy in front of that
    one server, and HAProxy in front of three (the same proxy's cost, one server or three)."""
    lb = Client(port)
    status, created = lb.call("POST", "/deployments", {"name": "bench", "target_node_count": 1000})
    assert status == 201, created
    d = created["id"]
    results = {}
    for path in (f"/deployments/{d}", f"/deployments/{d}/nodes?limit=100"):
        for round_ in range(3):
            for where, target in (("one server", cluster.ports[0]),
                                  ("HAProxy, one server", single_port),
                                  ("HAProxy, three servers", port)):
                measured = wrk(target, path)
                results.setdefault(f"{path} via {where}", []).append(
                    f"{measured['req/s']} req/s, p99 {measured['p99 ms']} ms"
                    + (f" {measured['errors']}" if measured["errors"] else ""))
    return results


def limits_and_revocation(cluster, haproxy, port, db, logs):
    """Keys on and --rate-limit 20 on every server: the limit holds across the three, and a
    revoked key is refused by each within a second."""
    cluster.stop()
    cluster.server_args = ["--auth", "keys", "--rate-limit", "20", "--rate-limit-burst", "20"]
    server = os.path.join(cluster.bins, "netorch-server")

    def key(name):
        out = subprocess.run([server, "keys", "create", "--database-url", cluster.url,
                              "--name", name, "--role", "viewer"],
                             check=True, capture_output=True, text=True)
        return out.stdout.strip()

    limited, revoked = key("limited"), key("revoked")
    for i in range(3):
        cluster.start_server(i)
    # HAProxy sees the three up (rise 2 at 500 ms).
    time.sleep(2)

    # As fast as four clients can through HAProxy, for 10 s: 20 a second plus the burst.
    ok, limited_count, window = [0], [0], 10.0
    end = time.time() + window

    def hammer():
        client = Client(port, token=limited)
        while time.time() < end:
            status, body = client.call("GET", "/deployments")
            with LOCK:
                if status == 200:
                    ok[0] += 1
                elif status == 429:
                    limited_count[0] += 1
                else:
                    fail(f"limited key: {status} {body}")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    per_second = (ok[0] - 20) / window
    if not 16 <= per_second <= 24:
        fail(f"a key limited to 20 a second got {per_second:.1f} a second through three "
             f"servers ({ok[0]} answered, {limited_count[0]} refused in {window} s)")

    # Revocation: each server asked directly, and HAProxy, until each refuses.
    clients = [Client(p, token=revoked) for p in cluster.ports] + [Client(port, token=revoked)]
    for client in clients:
        status, body = client.call("GET", "/whoami")
        assert status == 200, (status, body)
    refused_after = [None] * len(clients)
    started = time.time()
    done = threading.Event()

    def poll(i):
        while not done.is_set() and time.time() - started < 5:
            status, _ = clients[i].call("GET", "/whoami")
            if status == 401:
                refused_after[i] = time.time() - started
                return
            time.sleep(0.01)

    pollers = [threading.Thread(target=poll, args=(i,)) for i in range(len(clients))]
    for thread in pollers:
        thread.start()
    subprocess.run([server, "keys", "revoke", "--database-url", cluster.url, "revoked"],
                   check=True, capture_output=True)
    for thread in pollers:
        thread.join()
    done.set()
    for i, after in enumerate(refused_after):
        where = f"server {i}" if i < 3 else "HAProxy"
        if after is None or after >= 1.0:
            fail(f"{where} still took the revoked key {after} s after `keys revoke` began")
    return {
        "rate limit 20/s through three servers, measured per second": round(per_second, 1),
        "revoked key refused after (s), servers 0-2 and HAProxy":
            [None if a is None else round(a, 3) for a in refused_after],
    }


if __name__ == "__main__":
    sys.exit(main())
