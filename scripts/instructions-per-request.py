#!/usr/bin/env python3
"""What one request costs a server build, in instructions (valgrind's callgrind counts
instructions, not seconds: the same on a busy or an idle machine). For each binary given: starts
it under callgrind on a fresh SQLite file with no workers, creates a 200-node deployment, warms
up, zeroes the counters, then sends, over loopback:

- 1,000 `GET /deployments/1` on one keep-alive connection,
- 300 `GET /deployments/1` each on a new connection,
- 100 `POST /deployments/1/telemetry` of 100 samples each (JSON, no timestamps),

dumping the counters after each part. Prints instructions per request for each part and binary.

    python3 scripts/instructions-per-request.py OLD_BINARY NEW_BINARY
"""

import glob
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time


def exchange(sock, request):
    """Sends one request on `sock` and reads its whole answer (Content-Length framed)."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b" ", 2)[1]


def request(method, path, body=b""):
    headers = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body:
        headers += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return headers.encode() + b"\r\n" + body


def measure(binary, work, name):
    port = 18300 + len(name)
    out = os.path.join(work, f"callgrind.{name}")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
         binary, "--database-url", f"sqlite://{work}/{name}.db", "--bind", f"127.0.0.1:{port}",
         "--workers", "none", "--http-workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    deadline = time.time() + 120
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port))
            break
        except OSError:
            if time.time() > deadline:
                server.kill()
                raise SystemExit(f"{binary} did not start under valgrind")
            time.sleep(0.5)
    create = json.dumps({"name": "bench", "target_node_count": 200}).encode()
    assert exchange(sock, request("POST", "/deployments", create)) == b"201"
    push = json.dumps({"samples": [{"node_id": n, "latency_ms": 10.0, "throughput_gbps": 9.0,
                                    "error_rate": 0.1} for n in range(1, 101)]}).encode()
    for _ in range(50):
        exchange(sock, request("GET", "/deployments/1"))
        exchange(sock, request("POST", "/deployments/1/telemetry", push))

    def part(count, run):
        subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(count):
            run()
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        dumps = sorted(glob.glob(f"{out}.{server.pid}.*"), key=os.path.getmtime)
        with open(dumps[-1]) as dump:
            total = next(int(line.split()[1]) for line in dump if line.startswith("summary:"))
        return total / count

    def fresh():
        with socket.create_connection(("127.0.0.1", port)) as one:
            exchange(one, request("GET", "/deployments/1"))

    results = {
        "GET keep-alive": part(1000, lambda: exchange(sock, request("GET", "/deployments/1"))),
        "GET new connection": part(300, fresh),
        "POST 100 samples": part(
            100, lambda: exchange(sock, request("POST", "/deployments/1/telemetry", push))),
        "GET nodes (200)": part(
            300, lambda: exchange(sock, request("GET", "/deployments/1/nodes"))),
        "GET bottlenecks": part(
            30, lambda: exchange(sock, request("GET", "/deployments/1/bottlenecks"))),
    }
    sock.close()
    server.terminate()
    server.wait(timeout=120)
    return results


def main():
    binaries = sys.argv[1:]
    if not binaries:
        raise SystemExit(__doc__)
    work = tempfile.mkdtemp(prefix="netorch-instructions-")
    table = {}
    for index, binary in enumerate(binaries):
        table[binary] = measure(binary, work, f"b{index}")
    parts = list(next(iter(table.values())))
    print("instructions per request")
    for part in parts:
        row = "  ".join(f"{table[b][part]:>12,.0f}" for b in binaries)
        print(f"{part:<20} {row}")
    print("binaries: " + ", ".join(binaries))


if __name__ == "__main__":
    main()
