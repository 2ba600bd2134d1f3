#!/bin/sh
# An example provisioner for netorch's `command` profile (docs/PROVISIONERS.md): one run per node
# phase, the phase as the last argument, the node as JSON on stdin; exit 0 for success, and a
# last line of JSON on stdout with an optional `address` (at provision) and `message`.
#
# It needs only a POSIX shell and python3 (to read the JSON). Replace the bodies of the three
# phases with your own steps: an IPAM reservation, a NETCONF push, a ticket.
set -eu
phase="$1"
input=$(cat)
field() { printf '%s' "$input" | python3 -c "import json,sys; v=json.load(sys.stdin)$1; print('' if v is None else v)"; }
node_id=$(field '["node"]["id"]')
hostname=$(field '["node"]["hostname"]')
attempt=$(field '["node"]["attempt"]')
site=$(field '["parameters"].get("site", "lab")')

case "$phase" in
  provision)
    # Reserve an address for the device (here: derived from its id in 100.64.0.0/10, clear of
    # the simulator's 10.0.0.0/8).
    echo "reserving an address for $hostname at $site (attempt $attempt)" >&2
    printf '{"address": "100.%d.%d.%d", "message": "reserved at %s"}\n' \
      $((64 + node_id / 65536)) $((node_id / 256 % 256)) $((node_id % 256)) "$site"
    ;;
  configure)
    # Push the configuration; a failure exits non-zero and says why.
    echo "configuring $hostname" >&2
    printf '{"message": "%s configured"}\n' "$hostname"
    ;;
  release)
    echo "releasing $hostname" >&2
    ;;
  *)
    printf '{"message": "unknown phase %s"}\n' "$phase"
    exit 2
    ;;
esac
