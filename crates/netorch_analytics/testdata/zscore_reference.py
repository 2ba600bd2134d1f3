"""The original service's bottleneck detection (the API contract's `method=zscore`), in Python
with the `statistics` module, run on the simulator's telemetry.

For each scenario (a name and the node ids of one deployment) it simulates a 10-minute window
at 5-second slots (120 samples per node, with the formula of
../../netorch_simulator/testdata/reference.py) and prints one line per node:
`scenario,node_id,z_latency,z_throughput,z_error_rate,deviation_score,flagged`.
Regenerate with `python3 zscore_reference.py > golden_zscore.csv`.
"""
import os
import statistics
import sys

# The telemetry formula has one definition, the simulator's reference.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "netorch_simulator", "testdata"))
from reference import metrics  # noqa: E402


START = 1_800_000_000
SLOTS = 120

SCENARIOS = {
    "ids_1_to_10": list(range(1, 11)),
    "ids_1_to_40": list(range(1, 41)),
    "ids_5_to_9": list(range(5, 10)),
}


def zscore(samples, threshold=2.0):
    columns = list(zip(*[s[1:] for s in samples]))
    if len(samples) >= 2:
        means = [statistics.mean(c) for c in columns]
        sds = [statistics.stdev(c) for c in columns]
    else:
        means, sds = [0, 0, 0], [0, 0, 0]
    by_node = {}
    for s in samples:
        by_node.setdefault(s[0], []).append(s[1:])
    out = []
    for node_id in sorted(by_node):
        node_means = [statistics.mean(c) for c in zip(*by_node[node_id])]
        z = []
        for i, sign in enumerate((1, -1, 1)):
            z.append(sign * (node_means[i] - means[i]) / sds[i] if sds[i] > 0 else 0.0)
        score = 0.4 * max(0, z[0]) + 0.4 * max(0, z[1]) + 0.2 * max(0, z[2])
        flagged = any(x >= threshold for x in z)
        out.append((node_id, z[0], z[1], z[2], score, flagged))
    return out


if __name__ == "__main__":
    for name, ids in SCENARIOS.items():
        samples = [
            (node_id, *metrics(node_id, START + 5 * slot))
            for slot in range(SLOTS)
            for node_id in ids
        ]
        for node_id, zl, zt, ze, score, flagged in zscore(samples):
            print(f"{name},{node_id},{zl!r},{zt!r},{ze!r},{score!r},{int(flagged)}")
