#!/usr/bin/env python3
"""The collectors' client libraries from PyPI against the release server, on one database
(run once per backend by collectors-check.sh), with API keys on:

- influxdb-client (InfluxDB 2's write API, gzip on, the key as `Token`) writes points that read
  back exactly through GET .../telemetry; a line that is not line protocol gets the documented
  400 naming its line number, and nothing of that request is stored;
- influxdb (InfluxDB 1's client, the key as the basic auth password) does the same through
  POST /write, and its refusal (a node that does not exist) is the documented 400 with the count;
- opentelemetry-sdk with opentelemetry-exporter-otlp-proto-http (gzip, the key as Bearer)
  exports observable gauges, the deployment a resource attribute and the node a point's, that
  arrive as samples of each node.

Usage: collectors-check.py --bin-dir target/release --database-url URL
"""
import argparse
import os
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

from influxdb import InfluxDBClient  # noqa: E402
from influxdb.exceptions import InfluxDBClientError  # noqa: E402
from influxdb_client import InfluxDBClient as Influx2Client, Point, WritePrecision  # noqa: E402
from influxdb_client.client.write_api import SYNCHRONOUS  # noqa: E402
from influxdb_client.rest import ApiException  # noqa: E402
from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # noqa: E402
from opentelemetry.metrics import Observation  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402


def fail(message):
    raise SystemExit(f"collectors check: {message}")


def stored(base, token, deployment):
    answer = harness.http("GET", f"{base}/deployments/{deployment}/telemetry?limit=1000",
                          token=token)
    names = {n["id"]: n["node_id"] for n in
             harness.http("GET", f"{base}/deployments/{deployment}/nodes", token=token)["nodes"]}
    return sorted((names[s["node_id"]], s["timestamp"], s["latency_ms"], s["throughput_gbps"],
                   s["error_rate"]) for s in answer["samples"])


def stamp(at):
    """A time as the API shows it: UTC, no offset, microseconds."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    server_bin = os.path.join(args.bin_dir, "netorch-server")
    work = tempfile.mkdtemp(prefix="netorch-collectors-")

    def key(name, role):
        return subprocess.run([server_bin, "keys", "create", "--name", name, "--role", role,
                               "--database-url", args.database_url, "--create-database"],
                              check=True, capture_output=True, text=True).stdout.strip()

    admin, collector = key("root", "admin"), key("telegraf", "collector")
    server, address = harness.start(
        [server_bin, "--database-url", args.database_url, "--bind", "127.0.0.1:0",
         "--auth", "keys", "--workers", "none"],
        r"listening on http://([^\s,]+)", os.path.join(work, "server.log"))
    base = f"http://{address}"
    try:
        deployment = harness.http("POST", f"{base}/deployments",
                                  {"name": "pops", "target_node_count": 3,
                                   "telemetry_origin": "pushed"}, token=admin)["id"]
        now = datetime.now(timezone.utc).replace(microsecond=0)

        # InfluxDB 2's client: Points, gzip, seconds.
        with Influx2Client(url=base, token=collector, org="ops", enable_gzip=True) as client:
            writer = client.write_api(write_options=SYNCHRONOUS)
            points = [Point("netorch").tag("deployment", "pops").tag("node", f"node-00{n}")
                      .field("latency_ms", 10.0 + n).field("throughput_gbps", 9.5)
                      .field("error_rate", 0.25 * n).time(now - timedelta(seconds=s),
                                                          WritePrecision.S)
                      for n in (1, 2, 3) for s in (10, 20)]
            writer.write(bucket="net", record=points, write_precision=WritePrecision.S)
            want = sorted((f"node-00{n}", stamp(now - timedelta(seconds=s)), 10.0 + n, 9.5,
                           0.25 * n) for n in (1, 2, 3) for s in (10, 20))
            got = stored(base, admin, deployment)
            if got != want:
                fail(f"influxdb-client: stored {got}, not {want}")
            bad = [f"netorch,deployment={deployment},node=node-001 latency_ms=1,"
                   f"throughput_gbps=1,error_rate=0 {int(now.timestamp()) - 5}",
                   "netorch,deployment=pops latency_ms"]
            try:
                writer.write(bucket="net", record=bad, write_precision=WritePrecision.S)
                fail("influxdb-client: a bad line was accepted")
            except ApiException as error:
                if error.status != 400 or "line 2 is not line protocol" not in error.body:
                    fail(f"influxdb-client: a bad line got {error.status}: {error.body}")
            if len(stored(base, admin, deployment)) != len(want):
                fail("influxdb-client: part of a refused request was stored")
        print("collectors check: influxdb-client", len(want), "points read back, a bad line 400")

        # InfluxDB 1's client: the key as the basic auth password, milliseconds.
        client = InfluxDBClient(host=address.split(":")[0], port=int(address.split(":")[1]),
                                username="telegraf", password=collector, database="net")
        at = now - timedelta(seconds=30)
        client.write_points([{"measurement": "netorch",
                              "tags": {"deployment": str(deployment), "node": f"node-00{n}"},
                              "time": int(at.timestamp() * 1000),
                              "fields": {"latency_ms": 20.5, "throughput_gbps": 8.0 + n,
                                         "error_rate": 0.5}} for n in (1, 2)],
                            time_precision="ms")
        want += [(f"node-00{n}", stamp(at), 20.5, 8.0 + n, 0.5) for n in (1, 2)]
        got = stored(base, admin, deployment)
        if got != sorted(want):
            fail(f"influxdb: stored {got}, not {sorted(want)}")
        try:
            client.write_points([{"measurement": "netorch",
                                  "tags": {"deployment": "pops", "node": "node-404"},
                                  "fields": {"latency_ms": 1.0}}])
            fail("influxdb: a point of an unknown node was accepted")
        except InfluxDBClientError as error:
            if error.code != 400 or "1 unknown_node" not in str(error.content):
                fail(f"influxdb: an unknown node got {error.code}: {error.content}")
        print("collectors check: influxdb (1.x)", 2, "points read back, an unknown node 400")

        # OpenTelemetry's SDK: observable gauges, exported once on flush, gzip.
        before = len(stored(base, admin, deployment))
        exporter = OTLPMetricExporter(endpoint=f"{base}/v1/metrics",
                                      headers={"Authorization": f"Bearer {collector}"},
                                      compression=Compression.Gzip)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
        provider = MeterProvider(resource=Resource.create({"deployment": "pops"}),
                                 metric_readers=[reader])
        meter = provider.get_meter("netorch-collectors-check")
        readings = {n: (30.0 + n, 7.5, 0.125 * n) for n in (1, 2, 3)}
        for index, metric in enumerate(("latency_ms", "throughput_gbps", "error_rate")):
            def observe(_options, index=index):
                return [Observation(values[index], {"node": f"node-00{n}"})
                        for n, values in readings.items()]
            meter.create_observable_gauge(f"netorch_{metric}", callbacks=[observe])
        if not provider.force_flush(timeout_millis=10_000):
            fail("opentelemetry: the export did not finish")
        provider.shutdown()
        got = [row for row in stored(base, admin, deployment) if row[2] >= 30.0]
        per_node = {}
        for node, _, latency, throughput, error in got:
            n = int(node[-1])
            if (latency, throughput, error) != readings[n]:
                fail(f"opentelemetry: {node} stored {(latency, throughput, error)}")
            per_node[n] = per_node.get(n, 0) + 1
        if sorted(per_node) != [1, 2, 3] or len(set(per_node.values())) != 1:
            fail(f"opentelemetry: samples per node {per_node}")
        if len(stored(base, admin, deployment)) != before + len(got):
            fail("opentelemetry: samples other than the exported ones appeared")
        print("collectors check: opentelemetry-sdk", len(got), "samples from",
              "gauges exported over OTLP/HTTP")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
