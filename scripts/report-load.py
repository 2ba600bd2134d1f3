#!/usr/bin/env python3
"""Health under heavy reports: 16 clients ask for 60-minute robust bottleneck reports of a
10,000-node deployment (1.2 M samples) as fast as they can, while /health and /ready are timed
every 100 ms and the server's resident memory is sampled. Prints the health and readiness
latencies, how many reports were served or told to retry (503 + Retry-After), and peak and idle
memory. Loopback only, bounded in time.

    scripts/report-load.py --binary target/release/netorch-server [--seconds 30]
"""
import argparse, json, math, os, re, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request


def call(url, method="GET", body=None, timeout=120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary", required=True)
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--clients", type=int, default=16)
    a = p.parse_args()
    work = tempfile.mkdtemp()
    log = open(os.path.join(work, "server.log"), "wb")
    server = subprocess.Popen([a.binary, "--bind", "127.0.0.1:0", "--workers", "none",
                               "--database-url", f"sqlite://{work}/load.db",
                               "--max-nodes-per-deployment", "10000", "--shutdown-grace", "0"],
                              stdout=log, stderr=log, env={**os.environ, "RUST_LOG": "warn,netorch_server=info"})
    try:
        base = None
        for _ in range(100):
            m = re.search(rb"listening on (http://127\.0\.0\.1:\d+)", open(os.path.join(work, "server.log"), "rb").read())
            if m:
                base = m.group(1).decode()
                break
            time.sleep(0.1)
        status, body = call(base + "/deployments", "POST", {"name": "load", "target_node_count": 10000})
        deployment = json.loads(body)["id"]
        nodes = [n["id"] for n in json.loads(call(f"{base}/deployments/{deployment}/nodes")[1])["nodes"]]
        now = time.time()
        started = time.time()
        for slot in range(120):
            ts = now - 5 * slot - 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + "Z"
            samples = []
            for n in nodes:
                bad = n % 10 >= 8
                wave = math.sin(ts / 100 + n) * 0.3
                samples.append({"node_id": n, "timestamp": stamp,
                                "latency_ms": round((60 if bad else 12) * (1 + 0.2 * wave), 2),
                                "throughput_gbps": round((7 if bad else 9.4) * (1 + 0.1 * wave), 2),
                                "error_rate": round((0.8 if bad else 0.12) + 0.1 * abs(wave), 2)})
            assert call(f"{base}/deployments/{deployment}/telemetry", "POST", {"samples": samples})[0] == 202
        print(f"seeded 1,200,000 samples in {time.time() - started:.0f} s; RSS {rss_kib(server.pid, 'VmRSS') // 1024} MiB")

        stop = threading.Event()
        outcomes = {"served": 0, "retry": 0, "other": 0}
        lock = threading.Lock()

        def reporter():
            while not stop.is_set():
                status, _ = call(f"{base}/deployments/{deployment}/bottlenecks?analysis_window_minutes=60")
                with lock:
                    outcomes["served" if status == 200 else "retry" if status == 503 else "other"] += 1
                if status == 503:
                    time.sleep(0.2)

        probes = {"/health": [], "/ready": []}
        peak = [0, 0]

        def prober():
            while not stop.is_set():
                for path in probes:
                    t = time.time()
                    status, _ = call(base + path, timeout=10)
                    probes[path].append((time.time() - t) * 1000)
                peak[0] = max(peak[0], rss_kib(server.pid, "VmRSS"))
                peak[1] = max(peak[1], rss_kib(server.pid, "RssAnon"))
                time.sleep(0.1)

        threads = [threading.Thread(target=reporter) for _ in range(a.clients)] + [threading.Thread(target=prober)]
        for t in threads:
            t.start()
        time.sleep(a.seconds)
        stop.set()
        for t in threads:
            t.join()
        for path, times in probes.items():
            times.sort()
            print(f"{path}: {len(times)} probes under {a.clients} report clients: median {times[len(times)//2]:.1f} ms, "
                  f"p99 {times[int(len(times) * 0.99)]:.1f} ms, max {times[-1]:.1f} ms")
        print(f"reports: {outcomes['served']} served, {outcomes['retry']} told to retry (503), {outcomes['other']} other")
        print(f"resident memory: peak {max(peak[0], rss_kib(server.pid, 'VmHWM')) // 1024} MiB "
              f"(of which at most {peak[1] // 1024} MiB anonymous; the rest is the database file's "
              f"pages mapped by SQLite's mmap, the kernel's page cache); "
              f"{rss_kib(server.pid, 'VmRSS') // 1024} MiB at the end")
        time.sleep(10)
        print(f"resident memory 10 s idle: {rss_kib(server.pid, 'VmRSS') // 1024} MiB, "
              f"{rss_kib(server.pid, 'RssAnon') // 1024} MiB anonymous")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
