"""The original service's telemetry formula, in Python, as the API contract states it.

Writes golden_metrics.csv: `id,unix_seconds,latency_ms,throughput_gbps,error_rate` for node ids
1..100 over 20 consecutive 5-second slots. The simulator's golden test reads it back and
requires equal values. Regenerate with `python3 reference.py > golden_metrics.csv`;
`python3 reference.py --round2 > golden_round2.csv` regenerates the cases of Python's
`round(x, 2)` that the rounding test checks, and
`python3 reference.py --fractional > golden_fractional.csv` the readings at slot starts that are
not whole seconds (`id,unix_microseconds,latency_ms,throughput_gbps,error_rate`): the formula's
`unix_seconds` is the exact time, as Python's `time.time()` gives it, fraction included.
"""
import math
import random
import sys


def metrics(node_id, unix_seconds):
    f = node_id % 10
    t = unix_seconds / 100
    v = math.sin(t + node_id) * 0.3
    if f <= 7:
        lat, thr, err = 10 + 2 * f, 9.5 - 0.1 * f, 0.1 + 0.02 * f
    else:
        lat, thr, err = 50 + (f - 7) * 20, 8 - (f - 7) * 1.5, 0.5 + (f - 7) * 0.3
    lat = lat * (1 + 0.2 * v)
    thr = thr * (1 + 0.1 * v)
    err = err + 0.1 * v
    lat = max(1, min(200, lat))
    thr = max(1, min(10, thr))
    err = max(0, min(5, err))
    return round(lat, 2), round(thr, 2), round(err, 2)


def round2_cases():
    random.seed(7)
    for _ in range(300):
        x = random.choice([
            random.uniform(0, 200),
            round(random.uniform(0, 200), 3),
            random.randint(0, 20000) / 1000 + 0.005,
        ])
        print(f"{x!r},{round(x, 2)!r}")


def fractional_cases():
    # Slots of 0.5 s (time scale 10) and 0.1 s (time scale 50) starting at whole, half and
    # tenth seconds. The time is carried as integer microseconds, as netorch stores it; the
    # formula sees it as Python's float of those seconds.
    for node_id in range(1, 51):
        for step_us in (500_000, 100_000, 250_000):
            for slot in range(8):
                micros = 1_800_000_000_000_000 + 32_500_000 + step_us * slot
                lat, thr, err = metrics(node_id, micros / 1_000_000)
                print(f"{node_id},{micros},{lat!r},{thr!r},{err!r}")


if __name__ == "__main__" and sys.argv[1:] == ["--round2"]:
    round2_cases()
elif __name__ == "__main__" and sys.argv[1:] == ["--fractional"]:
    fractional_cases()
elif __name__ == "__main__":
    for node_id in range(1, 101):
        for slot in range(20):
            unix_seconds = 1_800_000_000 + 5 * slot
            lat, thr, err = metrics(node_id, unix_seconds)
            print(f"{node_id},{unix_seconds},{lat!r},{thr!r},{err!r}")
