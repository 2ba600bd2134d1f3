"""What the checks that run the release binaries share: starting a process and waiting for the
address it logs, and JSON over HTTP. Imported by prometheus-check.py and browser-check.py (run
from the repository's root or from scripts/)."""

import json
import re
import subprocess
import threading
import time
import urllib.request


def start(command, pattern, log_path):
    """Starts `command`, logging its stderr to `log_path`; returns the process and the first match
    of `pattern` in its log (the address it serves). Gives up after 30 s."""
    log = open(log_path, "w")
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    found = {}

    def drain():
        for line in process.stderr:
            log.write(line)
            log.flush()
            match = re.search(pattern, line)
            if match and "address" not in found:
                found["address"] = match.group(1)

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.time() + 30
    while "address" not in found:
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise SystemExit(f"{command[0]} did not start; see {log_path}")
        time.sleep(0.05)
    return process, found["address"]


def http(method, url, body=None, token=None):
    """One JSON request; returns the decoded answer (None for an empty one)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")
