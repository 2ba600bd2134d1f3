#!/usr/bin/env python3
"""Switches to poll without switches: SNMP agents recorded from real devices (PyPI's
snmpsim-data), served by snmpsim, with their interface counters made to move.

The recordings are walks of real switches and routers, so every OID a poller asks for is
there, in the device's own shape (its interface indexes, names, speeds). A recording is a
snapshot: its counters never move, and most were zeroed when it was anonymised. This script
copies a recording into a data directory snmpsim serves under the community `public`, with the
interface counters (octets, unicast packets, errors; 32- and 64-bit) rewritten to snmpsim's
`numeric` variation: each counts up from its recorded value at a constant rate while snmpsim
runs. The rates are fixed per agent and interface (no randomness): a quarter of each
interface's speed give or take, 700-byte packets, and one error in 10,000 packets on every
fifth interface.

    python scripts/snmp-lab.py OUT_DIR [--recording network/switch/cisco-c3560 ...]

writes OUT_DIR/agent-1/public.snmprec, ... and prints, one line each, the command that serves
it on its own loopback port (`--base-port`, then the next ports). Used by the "Monitoring real
switches over SNMP" recipe's test (bins/netorch_server/tests/snmp.rs) and by anyone trying the
recipe before pointing it at real switches (docs/COLLECTORS.md).
"""

import argparse
import bz2
import pathlib
import shutil
import sys

import snmpsim_data

IF_TABLE = "1.3.6.1.2.1.2.2.1."
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1."
# column → what it counts.
COUNTERS = {
    IF_TABLE + "10": "octets",  # ifInOctets
    IF_TABLE + "16": "octets",  # ifOutOctets
    IF_TABLE + "11": "packets",  # ifInUcastPkts
    IF_TABLE + "17": "packets",  # ifOutUcastPkts
    IF_TABLE + "14": "errors",  # ifInErrors
    IF_TABLE + "20": "errors",  # ifOutErrors
    IF_X_TABLE + "6": "octets",  # ifHCInOctets
    IF_X_TABLE + "10": "octets",  # ifHCOutOctets
    IF_X_TABLE + "7": "packets",  # ifHCInUcastPkts
    IF_X_TABLE + "11": "packets",  # ifHCOutUcastPkts
}
IF_HIGH_SPEED = IF_X_TABLE + "15"  # Mbit/s
DEFAULT_SPEED_MBPS = 1000
PACKET_BYTES = 700

DEFAULT_RECORDINGS = [
    "network/switch/cisco-c3560",
    "network/switch/brocade-icx6430-24",
    "network/router/vyatta-unknown",
]


def recording_lines(name):
    """The lines of a recording of snmpsim-data (`network/switch/cisco-c3560`)."""
    data = pathlib.Path(snmpsim_data.__file__).parent / "data"
    for candidate in (data / f"{name}.snmprec", data / f"{name}.snmprec.bz2"):
        if candidate.exists():
            opener = bz2.open if candidate.suffix == ".bz2" else open
            with opener(candidate, "rt", encoding="utf-8", errors="replace") as f:
                return f.read().splitlines()
    sys.exit(f"snmp-lab: no recording {name!r} in {data}")


def octets_per_second(agent, if_index, speed_mbps):
    """A quarter of the interface's speed, give or take, the same every run."""
    utilisation = 0.05 + ((agent * 7 + if_index * 13) % 41) / 100
    return int(speed_mbps * 1_000_000 / 8 * utilisation)


def moving(lines, agent):
    """`lines` with the interface counters counting up."""
    speeds = {}
    for line in lines:
        oid, _, rest = line.partition("|")
        if oid.startswith(IF_HIGH_SPEED + "."):
            tag, _, value = rest.partition("|")
            if tag == "66" and value.isdigit() and int(value) > 0:
                speeds[oid.rsplit(".", 1)[1]] = int(value)
    out = []
    for line in lines:
        oid, _, rest = line.partition("|")
        column, _, index = oid.rpartition(".")
        kind = COUNTERS.get(column)
        tag, _, value = rest.partition("|")
        if kind is None or tag not in ("65", "70") or not index.isdigit():
            out.append(line)
            continue
        if_index = int(index)
        octets = octets_per_second(agent, if_index, speeds.get(index, DEFAULT_SPEED_MBPS))
        packets = max(1, octets // PACKET_BYTES)
        rate = {
            "octets": octets,
            "packets": packets,
            "errors": packets // 10_000 if if_index % 5 == 0 else 0,
        }[kind]
        initial = int(value) if value.isdigit() else 0
        # A Counter32 wraps as a real one does.
        wrap = ",wrap=1" if tag == "65" else ""
        out.append(f"{oid}|{tag}:numeric|initial={initial},rate={rate}{wrap}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=pathlib.Path, help="the directory to write the agents to")
    parser.add_argument(
        "--recording",
        action="append",
        help="a recording of snmpsim-data, as its path under data/ without the extension "
        f"(repeatable; default: {', '.join(DEFAULT_RECORDINGS)})",
    )
    parser.add_argument("--base-port", type=int, default=1161)
    args = parser.parse_args()
    # Beside this Python when it is a venv's (run without activating it), else on PATH.
    beside = pathlib.Path(sys.executable).with_name("snmpsim-command-responder")
    responder = str(beside) if beside.exists() else (
        shutil.which("snmpsim-command-responder") or "snmpsim-command-responder"
    )
    for agent, name in enumerate(args.recording or DEFAULT_RECORDINGS, start=1):
        directory = args.out / f"agent-{agent}"
        directory.mkdir(parents=True, exist_ok=True)
        lines = moving(recording_lines(name), agent)
        (directory / "public.snmprec").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(
            f"{responder} --data-dir={directory} --cache-dir={directory}/cache "
            f"--agent-udpv4-endpoint=127.0.0.1:{args.base_port + agent - 1}"
        )


if __name__ == "__main__":
    main()
