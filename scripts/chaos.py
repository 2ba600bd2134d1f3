#!/usr/bin/env python3
"""Bounded chaos run against the release binaries, then the invariants checked in the database.

One netorch-server (no embedded workers) and two netorch-worker processes share a database.
For --seconds, clients create deployments, push telemetry, retry failed nodes and delete
deployments, while the workers are killed with SIGKILL at random and restarted. Then the
workers run undisturbed until every node has settled, and the database must show:

- no sample and no event of a deleted deployment written after its delete (the audit log is
  append-only: its history stays, from DEPLOYMENT_CREATED, and its DEPLOYMENT_DELETED event is
  its last, recorded once);
- nothing stuck: every node of a live deployment RUNNING or FAILED;
- no duplicate transition: each node's events form one chain from PENDING to its state;
- no duplicate sample (node, slot);
- each deployment's state counters equal a count of its nodes;
- every sample answered 202 present (unless its deployment was deleted since), and every one a
  collector's protocol stored whole: a Prometheus remote write answered 204 (remote write 1.0,
  snappy and protobuf encoded here), a line protocol write answered 204 (gzipped), an OTLP/JSON
  export answered 200 without partial_success; with no reading left waiting for a metric;
- no 5xx answer, ever.

Loopback only. Usage:
    scripts/chaos.py --bin-dir target/release --database-url sqlite:///tmp/chaos.db
    scripts/chaos.py --bin-dir target/release --database-url 'postgres://...' [--seconds 45]
"""
import argparse
import gzip
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

FAILURES = []
LOCK = threading.RLock()


def fail(message):
    with LOCK:
        FAILURES.append(message)
    print(f"FAIL: {message}", file=sys.stderr, flush=True)


def call(base, method, path, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    if status >= 500:
        fail(f"{method} {path} answered {status}: {raw[:300]!r}")
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


def varint(n):
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(tag, data):
    return varint(tag << 3 | 2) + varint(len(data)) + data


def remote_write_body(series):
    """A snappy-compressed prometheus.WriteRequest of `series`, each (labels dict, value,
    milliseconds): protobuf by hand (field 1 timeseries; its 1 labels, 2 samples; a sample's 1
    double value, 2 int64 timestamp), and snappy as literal blocks only, which any snappy
    decoder reads."""
    request = b""
    for labels, value, millis in series:
        encoded = b"".join(length_delimited(1, length_delimited(1, k.encode())
                                            + length_delimited(2, v.encode()))
                           for k, v in labels.items())
        sample = varint(1 << 3 | 1) + struct.pack("<d", value) + varint(2 << 3) + varint(millis)
        request += length_delimited(1, encoded + length_delimited(2, sample))
    compressed = varint(len(request))
    for start in range(0, len(request), 65536):
        chunk = request[start:start + 65536]
        compressed += bytes([61 << 2]) + struct.pack("<H", len(chunk) - 1) + chunk
    return compressed


def remote_write(base, body, timeout=30):
    return post_raw(base, "/api/v1/write", body, {
        "content-type": "application/x-protobuf", "content-encoding": "snappy",
        "x-prometheus-remote-write-version": "0.1.0"}, timeout)


def post_raw(base, path, body, headers, timeout=30):
    """A POST of `body` with `headers`: its status and raw answer (5xx is a failure)."""
    request = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    if status >= 500:
        fail(f"POST {path} answered {status}: {raw[:300]!r}")
    return status, raw


def start(command, log_path):
    log = open(log_path, "ab")
    return subprocess.Popen(command, stdout=log, stderr=log)


def server_address(log_path, process):
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited: see {log_path}")
        with open(log_path, "rb") as log:
            match = re.search(rb"listening on http://(127\.0\.0\.1:\d+)", log.read())
        if match:
            return "http://" + match.group(1).decode()
        time.sleep(0.1)
    sys.exit("the server did not start")


class Database:
    """Read-only queries for the checks: sqlite3 for SQLite, psql for PostgreSQL."""

    def __init__(self, url):
        self.url = url
        if url.startswith("sqlite://"):
            self.sqlite = sqlite3.connect(url[len("sqlite://"):], timeout=30)
        else:
            self.sqlite = None

    def rows(self, sql):
        if self.sqlite is not None:
            return [tuple(r) for r in self.sqlite.execute(sql).fetchall()]
        out = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", self.url, "-c", sql],
                             check=True, capture_output=True, text=True).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]


def micros(text):
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    delta = at - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    print(f"chaos: seed {seed}, {args.seconds} s on {args.database_url.split('@')[-1]}",
          flush=True)
    rng = random.Random(seed)
    logs = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"netorch-chaos-{os.getpid()}")
    os.makedirs(logs, exist_ok=True)

    # An external provisioner (a `command` profile, docs/PROVISIONERS.md) every server and
    # worker is given: a third of the deployments run its program per node phase, so workers are
    # killed mid-run and others take the runs over after their lease.
    profiles = write_provisioner(logs)
    server_log = os.path.join(logs, "server.log")
    server = start([os.path.join(args.bin_dir, "netorch-server"), "--bind", "127.0.0.1:0",
                    "--workers", "none", "--database-url", args.database_url,
                    "--shutdown-grace", "0.2", "--max-nodes-per-deployment", "400",
                    "--provisioners", profiles], server_log)
    base = server_address(server_log, server)
    worker_command = [os.path.join(args.bin_dir, "netorch-worker"), "--database-url",
                      args.database_url, "--time-scale", "20", "--provisioners", profiles]
    workers = {}
    for name in ("chaos-a", "chaos-b"):
        workers[name] = start(worker_command + ["--name", name],
                              os.path.join(logs, f"{name}.log"))

    # A webhook receiver on loopback: every alert is told through the outbox while workers die.
    hook = WebhookSink()
    status, body = call(base, "POST", "/receivers",
                        {"name": "chaos-hook", "kind": "webhook", "url": hook.url,
                         "secret": WebhookSink.SECRET})
    if status != 201:
        fail(f"receiver answered {status}: {body}")

    live = {}          # deployment id -> list of node ids
    deleted = {}       # deployment id -> time of its 204
    accepted = []      # (deployment, node, timestamp micros) answered 202
    stop = threading.Event()
    counts = {"kills": 0, "deletes": 0, "pushes": 0, "creates": 0, "retries": 0, "reads": 0}
    started = time.time()

    def create():
        # Quick alert rules, so that the degraded nodes' alerts fire (and some resolve, as
        # nodes are deleted with their deployment) within the run.
        new = {"name": f"chaos-{rng.randrange(1 << 20)}",
               "target_node_count": rng.randrange(20, 300),
               "alert_rules": {"bottleneck": {
                   "window_seconds": 30, "for_seconds": 2, "resolve_after_seconds": 2}}}
        if rng.random() < 1 / 3:
            new.update(provisioner="chaos-cmd", parameters={"run": "chaos"},
                       max_in_flight=rng.randrange(5, 40))
        # Self-healing for half of them: the degraded nodes' alerts re-provision them, while
        # workers die and deployments go.
        if rng.random() < 1 / 2:
            new["remediation"] = {"after_seconds": rng.randrange(0, 5),
                                  "max_concurrent": rng.randrange(1, 6),
                                  "max_unhealthy_percent": rng.choice([10, 40, 100])}
        status, body = call(base, "POST", "/deployments", new)
        if status != 201:
            fail(f"create answered {status}: {body}")
            return
        status, nodes = call(base, "GET", f"/deployments/{body['id']}/nodes")
        with LOCK:
            live[body["id"]] = [n["id"] for n in nodes["nodes"]]
            counts["creates"] += 1

    for _ in range(6):
        create()

    def pusher(index):
        local = random.Random(seed + index)
        slot = 0
        while not stop.is_set():
            with LOCK:
                if not live:
                    continue
                deployment = local.choice(list(live))
                nodes = live[deployment]
            slot += 1
            # Within the last hour (pushes may be dated neither ahead of the server's clock nor
            # before its raw retention), apart for every pusher and push.
            stamp = datetime.fromtimestamp(started - 3600 + slot * 0.01 + index * 0.001,
                                           tz=timezone.utc).isoformat().replace("+00:00", "Z")
            chosen = local.sample(nodes, min(len(nodes), 50))
            samples = [{"node_id": n, "timestamp": stamp, "latency_ms": 10.0,
                        "throughput_gbps": 9.0, "error_rate": 0.1} for n in chosen]
            status, body = call(base, "POST", f"/deployments/{deployment}/telemetry",
                                {"samples": samples})
            if status == 202:
                with LOCK:
                    accepted.extend((deployment, n, micros(stamp)) for n in chosen)
                    counts["pushes"] += 1
            elif status == 404:
                with LOCK:
                    if deployment not in deleted:
                        fail(f"push to live deployment {deployment} answered 404")
            else:
                fail(f"push answered {status}: {body}")

    def collector(name, offset_ms, send):
        # A collector's protocol: `send(deployment, nodes, millis)` writes the three metrics of
        # `nodes` at `millis` and says (stored whole, refused as of no deployment or node,
        # answer); dated on the JSON pushers' 10 ms grid at an offset of its own (they take 0
        # to 3 ms).
        local = random.Random(seed + 100 + offset_ms)
        base_ms = int((started - 3600) * 1000)
        slot = 0
        while not stop.is_set():
            with LOCK:
                if not live:
                    continue
                deployment = local.choice(list(live))
                nodes = live[deployment]
            slot += 1
            millis = base_ms + slot * 10 + offset_ms
            chosen = local.sample(nodes, min(len(nodes), 50))
            stored, gone, answer = send(deployment, chosen, millis)
            if stored:
                with LOCK:
                    accepted.extend((deployment, n, millis * 1000) for n in chosen)
                    counts[name] = counts.get(name, 0) + 1
            elif gone:
                with LOCK:
                    if deployment not in deleted:
                        fail(f"{name} to live deployment {deployment}: {answer[:300]!r}")
            else:
                fail(f"{name} answered {answer[:300]!r}")

    def prometheus(deployment, nodes, millis):
        # Prometheus's way: three series a node, by the deployment's and node's ids.
        series = [({"__name__": f"netorch_{metric}", "deployment": str(deployment),
                    "node": str(n)}, value, millis)
                  for n in nodes
                  for metric, value in (("latency_ms", 10.0), ("throughput_gbps", 9.0),
                                        ("error_rate", 0.1))]
        status, raw = remote_write(base, remote_write_body(series))
        gone = status == 400 and (b"unknown_deployment" in raw or b"unknown_node" in raw)
        return status == 204, gone, f"{status} {raw!r}".encode()

    def line_protocol(deployment, nodes, millis):
        # Telegraf's way: the netorch measurement, gzipped, in milliseconds.
        body = "".join(f"netorch,deployment={deployment},node={n} latency_ms=10,"
                       f"throughput_gbps=9,error_rate=0.1 {millis}\n" for n in nodes)
        status, raw = post_raw(base, "/api/v2/write?org=chaos&bucket=chaos&precision=ms",
                               gzip.compress(body.encode()),
                               {"content-type": "text/plain", "content-encoding": "gzip"})
        gone = status == 400 and (b"unknown_deployment" in raw or b"unknown_node" in raw)
        return status == 204, gone, f"{status} {raw!r}".encode()

    def otlp(deployment, nodes, millis):
        # The OpenTelemetry Collector's way, as OTLP/JSON: gauges, the deployment a resource
        # attribute, the node a point's.
        def gauge(metric, value):
            return {"name": f"netorch_{metric}", "gauge": {"dataPoints": [
                {"timeUnixNano": str(millis * 1_000_000), "asDouble": value,
                 "attributes": [{"key": "node", "value": {"stringValue": str(n)}}]}
                for n in nodes]}}
        body = {"resourceMetrics": [{
            "resource": {"attributes": [
                {"key": "deployment", "value": {"stringValue": str(deployment)}}]},
            "scopeMetrics": [{"metrics": [gauge("latency_ms", 10.0),
                                          gauge("throughput_gbps", 9.0),
                                          gauge("error_rate", 0.1)]}]}]}
        status, raw = post_raw(base, "/v1/metrics", json.dumps(body).encode(),
                               {"content-type": "application/json"})
        if status != 200:
            return False, False, f"{status} {raw!r}".encode()
        partial = (json.loads(raw) if raw else {}).get("partialSuccess") or {}
        message = partial.get("errorMessage", "")
        gone = "unknown_deployment" in message or "unknown_node" in message
        return not partial, gone, f"{status} {raw!r}".encode()

    def reader():
        # The fleet's totals and the searched listing while workers die and deployments go:
        # each answer whole (its parts add up) and true to what it asked for.
        local = random.Random(seed + 100)
        statuses = ["PROGRESSING", "PAUSED", "COMPLETE", "DEGRADED"]
        while not stop.is_set():
            status, fleet = call(base, "GET", "/fleet")
            if status != 200:
                fail(f"GET /fleet answered {status}: {fleet}")
            elif (sum(fleet["deployments"]["by_status"].values()) != fleet["deployments"]["total"]
                  or sum(fleet["nodes"]["by_state"].values()) != fleet["nodes"]["total"]):
                fail(f"the fleet's totals do not add up: {fleet}")
            wanted = local.choice(statuses)
            sort = local.choice(["newest", "oldest", "name", "most_failed"])
            status, page = call(base, "GET", f"/deployments?status={wanted}&sort={sort}&name=chaos")
            if status != 200:
                fail(f"a searched listing answered {status}: {page}")
            elif any(d["status"] != wanted or "chaos" not in d["name"].lower() for d in page):
                fail(f"a listing of {wanted} deployments named chaos held others: {page}")
            with LOCK:
                some = local.choice(list(live)) if live else None
                node = local.choice(live[some]) if some is not None and live[some] else None
            if node is not None:
                status, runs = call(base, "GET", f"/deployments/{some}/nodes/{node}/runs")
                if status not in (200, 404):
                    fail(f"a node's runs answered {status}: {runs}")
            counts["reads"] += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=pusher, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    threads.append(threading.Thread(target=collector, args=("remote write", 4, prometheus)))
    threads.append(threading.Thread(target=collector, args=("line protocol", 6, line_protocol)))
    threads.append(threading.Thread(target=collector, args=("OTLP", 8, otlp)))
    for thread in threads:
        thread.start()

    deadline = time.time() + args.seconds
    next_kill = time.time() + rng.uniform(0.3, 1.5)
    next_delete = time.time() + rng.uniform(2, 5)
    next_create = time.time() + rng.uniform(1, 3)
    while time.time() < deadline and not FAILURES:
        now = time.time()
        if now >= next_kill:
            name = rng.choice(list(workers))
            workers[name].send_signal(signal.SIGKILL)
            workers[name].wait()
            counts["kills"] += 1
            # Restarted under a new name, as a supervisor would start a new process.
            new_name = f"{name.split('#')[0]}#{counts['kills']}"
            del workers[name]
            workers[new_name] = start(worker_command + ["--name", new_name],
                                      os.path.join(logs, f"{new_name}.log"))
            next_kill = now + rng.uniform(0.3, 1.5)
        if now >= next_delete:
            with LOCK:
                victim = rng.choice(list(live)) if len(live) > 2 else None
            if victim is not None:
                # Marked before the request: a push may see the 404 before the 204 arrives here.
                with LOCK:
                    live.pop(victim, None)
                    deleted[victim] = time.time()
                status, body = call(base, "DELETE", f"/deployments/{victim}")
                if status != 204:
                    fail(f"delete answered {status}: {body}")
                counts["deletes"] += 1
            next_delete = now + rng.uniform(2, 5)
        if now >= next_create:
            create()
            with LOCK:
                some = rng.choice(list(live))
            status, failed = call(base, "GET", f"/deployments/{some}/nodes?state=FAILED")
            for node in (failed or {}).get("nodes", [])[:3]:
                status, body = call(base, "POST", f"/deployments/{some}/nodes/{node['id']}/retry")
                if status == 200:
                    counts["retries"] += 1
                elif status not in (404, 409):
                    fail(f"retry answered {status}: {body}")
            next_create = now + rng.uniform(1, 3)
        time.sleep(0.05)
    stop.set()
    for thread in threads:
        thread.join()

    # Settle: the workers finish every rollout undisturbed. Self-healing is turned off first:
    # it would keep sending nodes back (a deployment of 300 nodes has 60 degraded ones to
    # re-provision, one at a time at the least), and the settling would never end.
    for deployment in list(live):
        status, body = call(base, "PATCH", f"/deployments/{deployment}", {"remediation": None})
        if status not in (200, 404):
            fail(f"turning self-healing off answered {status}: {body}")
    settle_deadline = time.time() + 60
    while time.time() < settle_deadline:
        moving = 0
        for deployment in list(live):
            status, body = call(base, "GET", f"/deployments/{deployment}")
            states = body["node_states"]
            moving += states["PENDING"] + states["PROVISIONING"] + states["CONFIGURING"]
        if moving == 0:
            break
        time.sleep(0.5)
    # A few alert intervals (1.5 s at this time scale) undisturbed: every pending alert has
    # fired or been dropped by the end.
    time.sleep(6)
    settled = int(time.time() * 1e6)
    # The outbox drains: a notification a killed worker had claimed waits for its lease (30 s)
    # to end, then another worker sends it (again, if the dead one had sent it already).
    db = Database(args.database_url)
    drain_deadline = time.time() + 60
    while time.time() < drain_deadline:
        if int(db.rows("SELECT count(*) FROM notifications WHERE state = 'pending'")[0][0]) == 0:
            break
        time.sleep(1)

    server.send_signal(signal.SIGTERM)
    if server.wait(timeout=30) != 0:
        fail(f"the server exited {server.returncode}")
    for process in workers.values():
        process.send_signal(signal.SIGTERM)
    for name, process in workers.items():
        if process.wait(timeout=30) != 0:
            fail(f"worker {name} exited {process.returncode}")

    check(Database(args.database_url), live, deleted, accepted)
    check_runs(Database(args.database_url), logs)
    check_remediation(Database(args.database_url))
    check_alerts(Database(args.database_url), settled, counts)
    check_deliveries(Database(args.database_url), hook, counts)
    hook.server.shutdown()
    print(f"chaos: {counts}, {len(accepted)} samples accepted (202 from the JSON push, whole from a collector)", flush=True)
    if FAILURES:
        print(f"chaos: {len(FAILURES)} failures (seed {seed}, logs in {logs})", file=sys.stderr)
        sys.exit(1)
    print("chaos: every invariant holds", flush=True)


PROVISIONER_SCRIPT = r"""#!/bin/sh
# The chaos check's provisioner (the command protocol): a short pause, an address at provision.
input=$(cat)
id=$(printf '%s' "$input" | sed -n 's/.*"node":{[^}]*"id":\([0-9]*\).*/\1/p')
echo "$$" >> "$(dirname "$0")/pids"
sleep "0.$((id % 5))"
if [ "$1" = provision ]; then
  echo "{\"address\": \"100.100.$((id / 250)).$((id % 250 + 1))\"}"
fi
"""


def write_provisioner(logs):
    script = os.path.join(logs, "provision.sh")
    with open(script, "w") as f:
        f.write(PROVISIONER_SCRIPT)
    os.chmod(script, 0o755)
    profiles = os.path.join(logs, "provisioners.toml")
    with open(profiles, "w") as f:
        f.write(f'[profiles.chaos-cmd]\nkind = "command"\ncommand = ["{script}"]\n')
    return profiles


def check_runs(db, logs):
    """The runs of the external provisioner: each node phase's run finished (none left
    unfinished once nothing moves), each RUNNING node of the profile at the address its
    provision run reported, and no program left running once every worker stopped."""
    open_runs = db.rows("SELECT count(*) FROM provisioner_runs WHERE outcome IS NULL")
    if int(open_runs[0][0]) != 0:
        fail(f"{open_runs[0][0]} provisioner runs never finished")
    wrong = db.rows("SELECT n.id, n.ip_address FROM nodes n JOIN deployments d "
                    "ON d.id = n.deployment_id WHERE d.provisioner = 'chaos-cmd' "
                    "AND n.state = 'RUNNING' AND (n.ip_address IS NULL OR n.ip_address NOT LIKE '100.100.%')")
    if wrong:
        fail(f"{len(wrong)} nodes of the command profile without its address, e.g. {wrong[:3]}")
    runs = db.rows("SELECT count(*), coalesce(sum(starts), 0), coalesce(max(starts), 0) "
                   "FROM provisioner_runs")
    left = []
    pids = os.path.join(logs, "pids")
    if os.path.exists(pids):
        for line in open(pids):
            pid = line.strip()
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    mine = b"provision.sh" in f.read()
                with open(f"/proc/{pid}/stat") as f:
                    if mine and f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        left.append(pid)
            except OSError:
                pass
    if left:
        fail(f"{len(left)} provisioner programs still running, e.g. {left[:3]}")
    print(f"chaos: {runs[0][0]} provisioner runs, {runs[0][1]} program starts "
          f"(at most {runs[0][2]} for one run)", flush=True)


def check_remediation(db):
    """Self-healing: each alert re-provisioned its node once at most, the alert a remediation
    names is a firing alert of that node, and a node's count is its NODE_REMEDIATED events
    (the chain of its transitions is checked with the rest)."""
    seen = {}
    per_node = {}
    for node, metadata in db.rows("SELECT node_id, metadata FROM events "
                                  "WHERE event_type = 'NODE_REMEDIATED' ORDER BY id"):
        meta = json.loads(metadata)
        alert = meta["alert_id"]
        if alert in seen:
            fail(f"alert {alert} remediated nodes {seen[alert]} and {node}")
        seen[alert] = node
        per_node[int(node)] = per_node.get(int(node), 0) + 1
        found = db.rows(f"SELECT node_id, fingerprint, starts_at FROM alerts WHERE id = {alert}")
        if not found or found[0][0] in (None, "") or int(found[0][0]) != int(node) \
                or found[0][1] != meta["alert_fingerprint"] or found[0][2] in (None, ""):
            fail(f"NODE_REMEDIATED of node {node} names alert {alert}, which is {found}")
    for node, count in db.rows("SELECT id, remediations FROM nodes"):
        if int(count) != per_node.get(int(node), 0):
            fail(f"node {node} counts {count} remediations but has "
                 f"{per_node.get(int(node), 0)} NODE_REMEDIATED events")
    stopped = db.rows("SELECT count(*) FROM events WHERE event_type = 'REMEDIATION_STOPPED'")
    print(f"chaos: {len(seen)} nodes remediated, self-healing stopped {stopped[0][0]} times",
          flush=True)


def check(db, live, deleted, accepted):
    ids = lambda values: ",".join(str(v) for v in values) or "NULL"
    # No sample of a deleted deployment; its events stay (the log is append-only), from its
    # DEPLOYMENT_CREATED to its DEPLOYMENT_DELETED, which is its last and only one.
    orphans = db.rows("SELECT count(*) FROM telemetry_samples WHERE deployment_id NOT IN "
                      "(SELECT id FROM deployments)")
    if int(orphans[0][0]) != 0:
        fail(f"{orphans[0][0]} samples of deleted deployments")
    for deployment in deleted:
        events = db.rows(f"SELECT event_type FROM events WHERE deployment_id = {deployment} "
                         "ORDER BY id")
        kinds = [e[0] for e in events]
        if (not kinds or kinds[0] != "DEPLOYMENT_CREATED" or kinds[-1] != "DEPLOYMENT_DELETED"
                or kinds.count("DEPLOYMENT_DELETED") != 1):
            fail(f"deleted deployment {deployment} has events {kinds[:3]} ... {kinds[-3:]} "
                 f"({len(kinds)})")
    nodes_left = db.rows(f"SELECT count(*) FROM nodes WHERE deployment_id IN ({ids(deleted)})")
    if int(nodes_left[0][0]) != 0:
        fail(f"{nodes_left[0][0]} nodes of deleted deployments")
    # Nothing stuck.
    stuck = db.rows("SELECT id, state FROM nodes WHERE state NOT IN ('RUNNING', 'FAILED')")
    if stuck:
        fail(f"{len(stuck)} nodes stuck in flight, e.g. {stuck[:5]}")
    # One chain of transitions per node, ending in its state.
    chains = {}
    for node, kind, metadata in db.rows(
            "SELECT node_id, event_type, metadata FROM events WHERE node_id IS NOT NULL "
            "AND event_type NOT LIKE 'ALERT_%' ORDER BY id"):
        chains.setdefault(int(node), []).append(json.loads(metadata))
    for node, state in db.rows("SELECT id, state FROM nodes"):
        current = "PENDING"
        for step in chains.get(int(node), []):
            if step.get("from_state") != current:
                fail(f"node {node}: a transition from {step.get('from_state')} after {current} "
                     "(a duplicate or a lost transition)")
                break
            current = step.get("to_state")
        else:
            if current != state:
                fail(f"node {node} is {state} but its events end in {current}")
    # No duplicate sample.
    duplicates = db.rows("SELECT count(*) FROM (SELECT node_id, sampled_at FROM telemetry_samples "
                         "GROUP BY node_id, sampled_at HAVING count(*) > 1) d")
    if int(duplicates[0][0]) != 0:
        fail(f"{duplicates[0][0]} duplicated samples")
    # Counters equal counts.
    for row in db.rows("SELECT d.id, d.pending_nodes, d.provisioning_nodes, d.configuring_nodes, "
                       "d.running_nodes, d.failed_nodes, "
                       "(SELECT count(*) FROM nodes n WHERE n.deployment_id = d.id AND n.state = 'PENDING'), "
                       "(SELECT count(*) FROM nodes n WHERE n.deployment_id = d.id AND n.state = 'PROVISIONING'), "
                       "(SELECT count(*) FROM nodes n WHERE n.deployment_id = d.id AND n.state = 'CONFIGURING'), "
                       "(SELECT count(*) FROM nodes n WHERE n.deployment_id = d.id AND n.state = 'RUNNING'), "
                       "(SELECT count(*) FROM nodes n WHERE n.deployment_id = d.id AND n.state = 'FAILED') "
                       "FROM deployments d"):
        values = [int(v) for v in row]
        if values[1:6] != values[6:11]:
            fail(f"deployment {values[0]}: counters {values[1:6]} but counts {values[6:11]}")
    # Rollups count exactly the stored samples, per deployment and tier (nothing has expired in
    # a run this short), and a deleted deployment has none left.
    for table in ("telemetry_minutes", "telemetry_hours", "fleet_telemetry_minutes",
                  "fleet_telemetry_hours"):
        rows = db.rows(f"SELECT d.id, (SELECT count(*) FROM telemetry_samples s WHERE s.deployment_id = d.id), "
                       f"(SELECT coalesce(sum(r.sample_count), 0) FROM {table} r WHERE r.deployment_id = d.id) "
                       f"FROM deployments d")
        for deployment, samples, rolled in rows:
            if int(samples) != int(rolled):
                fail(f"deployment {deployment}: {samples} samples but {table} counts {rolled}")
        orphans = db.rows(f"SELECT count(*) FROM {table} WHERE deployment_id NOT IN "
                          f"(SELECT id FROM deployments)")
        if int(orphans[0][0]) != 0:
            fail(f"{orphans[0][0]} rows of {table} outlive their deployment")
    # Complete readings are stored at once: none waits, and none outlives its deployment.
    waiting = db.rows("SELECT count(*) FROM telemetry_partials")
    if int(waiting[0][0]) != 0:
        fail(f"{waiting[0][0]} readings left waiting for a metric")
    # Every 202 sample present, unless its deployment was deleted since.
    stored = set()
    for deployment in live:
        for node, at in db.rows(f"SELECT node_id, sampled_at FROM telemetry_samples "
                                f"WHERE deployment_id = {deployment}"):
            stored.add((int(node), int(at)))
    missing = [(d, n, t) for d, n, t in accepted if d in live and (n, t) not in stored]
    if missing:
        fail(f"{len(missing)} accepted samples are missing, e.g. {missing[:3]}")


class WebhookSink:
    """A loopback webhook receiver that checks each request's signature and keeps its alerts."""
    SECRET = "chaos-signing-key"

    def __init__(self):
        received = self.received = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sending worker was killed mid-request: nothing was delivered (its
                    # notification is sent again once its lease ends).
                    return
                stamp = self.headers.get("X-Netorch-Timestamp", "")
                want = "v1=" + hmac.new(WebhookSink.SECRET.encode(), stamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
                if not hmac.compare_digest(want, self.headers.get("X-Netorch-Signature", "")):
                    fail("a webhook request with a bad signature")
                payload = json.loads(body)
                with LOCK:
                    for alert in payload["alerts"]:
                        # One alert is its fingerprint and when it fired (a condition that
                        # fires again after it resolved is a new alert).
                        received.append((alert["fingerprint"], alert["status"],
                                         alert["startsAt"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def check_deliveries(db, hook, counts):
    """The outbox under worker kills: every firing and resolve told, in order, none lost."""
    pending = db.rows("SELECT count(*) FROM notifications WHERE state <> 'delivered'")
    if int(pending[0][0]) != 0:
        fail(f"{pending[0][0]} notifications not delivered after settling")
    told = {}
    by_print = {}
    with LOCK:
        for fingerprint, status, starts in hook.received:
            told.setdefault((fingerprint, starts), []).append(status)
            by_print.setdefault(fingerprint, set()).add(status)
    for fingerprint, statuses in told.items():
        # Repeats are allowed (a retry after a worker died mid-request), order is not.
        seen_resolved = False
        for status in statuses:
            if status == "resolved":
                seen_resolved = True
            elif seen_resolved:
                fail(f"{fingerprint}: a firing after its resolve at the webhook ({statuses})")
    for alert, fingerprint, state in db.rows("SELECT id, fingerprint, state FROM alerts "
                                             "WHERE state <> 'pending'"):
        statuses = by_print.get(fingerprint, set())
        if "firing" not in statuses:
            fail(f"alert {alert} ({fingerprint}) fired but the webhook never heard")
        if state == "resolved" and "resolved" not in statuses:
            fail(f"alert {alert} ({fingerprint}) resolved but the webhook never heard")
    counts["webhook requests"] = len(hook.received)
    counts["repeats"] = len(hook.received) - sum(len(set(s)) for s in told.values())


def check_alerts(db, settled, counts):
    """Alerts under worker kills: none lost, duplicated or stuck in pending."""
    told = {}
    for kind, metadata in db.rows("SELECT event_type, metadata FROM events WHERE event_type IN "
                                  "('ALERT_FIRING', 'ALERT_RESOLVED') ORDER BY id"):
        alert = json.loads(metadata).get("alert_id")
        told.setdefault(alert, []).append(kind)
    alerts = db.rows("SELECT id, fingerprint, state, active_since FROM alerts")
    for alert, fingerprint, state, active_since in alerts:
        kinds = told.pop(int(alert), [])
        want = {"pending": [], "firing": ["ALERT_FIRING"],
                "resolved": ["ALERT_FIRING", "ALERT_RESOLVED"]}[state]
        if kinds != want:
            fail(f"alert {alert} ({fingerprint}) is {state} but its events are {kinds}")
        # Pending longer than `for_seconds` (2) and a few intervals and leases: stuck.
        if state == "pending" and settled - int(active_since) > 10_000_000:
            fail(f"alert {alert} ({fingerprint}) stuck in pending since {active_since}")
    if told:
        fail(f"events of alerts that do not exist: {list(told)[:5]}")
    open_twice = db.rows("SELECT fingerprint FROM alerts WHERE state <> 'resolved' "
                         "GROUP BY fingerprint HAVING count(*) > 1")
    if open_twice:
        fail(f"{len(open_twice)} conditions with two open alerts, e.g. {open_twice[:3]}")
    fired = sum(1 for a in alerts if a[2] != "pending")
    if fired == 0:
        fail("no alert fired: the run did not reach the alerts loop")
    counts["alerts fired"] = fired
    counts["alerts resolved"] = sum(1 for a in alerts if a[2] == "resolved")


if __name__ == "__main__":
    main()
