#!/usr/bin/env python3
"""The dashboard in a real browser: Debian's headless Chromium, driven by Playwright for Python
(pointed at /usr/bin/chromium: no browser is downloaded), against the real release server.

- A walk as a new user takes it: create a deployment from the form (by keyboard), watch its
  nodes reach RUNNING live, retry the failed node, pause, scale and resume, run the bottleneck
  report, open a node's charts, delete the deployment; no console error on the way.
- Alerts: a deployment's page opened before anything fires shows its firing alerts live (from
  the event stream, never reloaded) and marks the alerting nodes in the node table; an alert is
  acknowledged and another silenced from the page (each with its comment, by dialog); the fleet
  page shows the deployment's firing count as the API counts it.
- Every page at 1280x800 and on a 390-pixel-wide phone: no sideways scrolling, and axe-core's
  accessibility rules (labels, contrast, names, ...) with no violation.
- With keys on: the token field, and actions shown by role (viewer, operator, admin).
- Speed: the fleet page and a 10,000-node deployment page interactive within 1 s (the page's
  "netorch-ready" mark, from the Performance API), and a 100,000-node rollout followed live
  without falling behind (how long after the API says it finished the page shows it all).
- Hostile pages (docs/SECURITY.md): a page of another origin tries to create and pause
  deployments with `fetch` (text/plain, form-encoded and JSON bodies) and with a form, and
  changes nothing; a page of a name resolved to 127.0.0.1 (what DNS rebinding achieves) gets
  421 for the dashboard and for its calls; a description holding a right-to-left override is
  shown as its code point.

Screenshots go to target/ui-screenshots/. Needs `pip install playwright axe-playwright-python`
and `apt-get install chromium` (.ci/run does both).

    python3 scripts/browser-check.py --target-dir "${CARGO_TARGET_DIR:-target}"
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import http, start  # noqa: E402
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("NETORCH_CHROMIUM", "/usr/bin/chromium")
READY_BUDGET_MS = 1000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def start_server(binary, work, name, *extra):
    """Starts a release server on a fresh SQLite file and a free port; returns it and its URL."""
    command = [binary, "--database-url", f"sqlite://{work}/{name}.db", "--bind", "127.0.0.1:0",
               *extra]
    return start(command, r"listening on (http://[^\s,]+)", os.path.join(work, f"{name}.log"))


def caught_up(page, base, deployment):
    """Whether the page has received the newest event of the deployment's log."""
    last = int(page.evaluate("document.body.dataset.lastEventId || 0"))
    return not http("GET", f"{base}/deployments/{deployment}/events?after={last}&limit=1")[
        "events"]


def wait_until(what, check, timeout=60, every=0.2):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


class Checks:
    """A browser with console errors collected and screenshots saved."""

    def __init__(self, browser, shots):
        self.browser = browser
        self.shots = shots
        self.axe = Axe()
        self.console_errors = []
        self.measured = {}

    def expect_logged(self, since, status):
        """Drops the browser's own log lines for responses with `status` that came after entry
        `since`: the ones a step provoked on purpose. Anything else stays an error."""
        self.console_errors[since:] = [
            e for e in self.console_errors[since:] if f"status of {status}" not in e]

    def page(self, viewport, **options):
        context = self.browser.new_context(viewport=viewport, **options)
        page = context.new_page()
        page.on("console", lambda m: m.type == "error" and self.console_errors.append(
            f"{page.url}: {m.text}"))
        page.on("pageerror", lambda e: self.console_errors.append(f"{page.url}: {e}"))
        page.set_default_timeout(30_000)
        return page

    def open(self, page, url, kind):
        """Opens `url`, waits until the page says it is interactive; returns that time in ms
        from the start of the navigation (the Performance API's mark)."""
        page.goto(url)
        page.wait_for_selector(f"body[data-ready={kind}]")
        return page.evaluate(
            "performance.getEntriesByName('netorch-ready').at(-1).startTime")

    def shoot(self, page, name):
        page.screenshot(path=os.path.join(self.shots, f"{name}.png"), full_page=True)

    def accessible(self, page, name):
        """axe-core's rules (WCAG 2 A and AA) find nothing on the page as it is now."""
        results = self.axe.run(page, options={
            "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
        violations = results.response["violations"]
        if violations:
            details = "; ".join(
                f"{v['id']} ({v['impact']}): {v['help']} at "
                f"{[n['target'] for n in v['nodes'][:3]]}" for v in violations)
            raise AssertionError(f"{name}: accessibility violations: {details}")

    def fits(self, page, name, width):
        """Nothing on the page makes it scroll sideways (wide tables scroll in their box)."""
        scroll = page.evaluate("document.documentElement.scrollWidth")
        assert scroll <= width, f"{name}: the page is {scroll} px wide on a {width} px screen"


ATTACK_PAGE = """<!doctype html>
<html><body>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="TARGET/deployments" enctype="text/plain" target="sink">
<input name='{"name": "csrf-form", "target_node_count": 1, "x": "' value='"}'>
</form>
<script>
(async () => {
  const target = "TARGET";
  const json = JSON.stringify({name: "csrf-fetch", target_node_count: 1});
  const tries = [
    fetch(`${target}/deployments`, {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: json}),
    fetch(`${target}/deployments`, {method: "POST", mode: "no-cors",
      body: new URLSearchParams({name: "csrf-urlencoded", target_node_count: "1"})}),
    fetch(`${target}/deployments/VICTIM/pause`, {method: "POST", mode: "no-cors"}),
    // Not simple: the browser asks first, and nobody granted it.
    fetch(`${target}/deployments`, {method: "POST",
      headers: {"Content-Type": "application/json"}, body: json}).catch(() => null),
  ];
  await Promise.allSettled(tries);
  document.getElementById("form").submit();
  setTimeout(() => { document.body.dataset.done = "yes"; }, 1500);
})();
</script>
</body></html>
"""


def hostile(checks, playwright, base):
    """Pages that must not get anywhere, and a text that must not mislead."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import threading
    victim = http("POST", f"{base}/deployments", {"name": "victim", "target_node_count": 1})
    page_html = ATTACK_PAGE.replace("TARGET", base).replace("VICTIM", str(victim["id"]))

    class Attacker(BaseHTTPRequestHandler):
        def do_GET(self):
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    attacker = ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
    threading.Thread(target=attacker.serve_forever, daemon=True).start()
    since = len(checks.console_errors)
    try:
        page = checks.page(DESKTOP)
        page.goto(f"http://127.0.0.1:{attacker.server_address[1]}/attack.html")
        page.wait_for_selector("body[data-done=yes]", timeout=30_000)
        page.context.close()
    finally:
        attacker.shutdown()
    # Whatever the browser logged of the refusals, it was provoked.
    checks.console_errors[since:] = []
    names = [d["name"] for d in http("GET", f"{base}/deployments?limit=1000")]
    assert not [n for n in names if n.startswith("csrf")], f"a cross-site page created: {names}"
    assert http("GET", f"{base}/deployments/{victim['id']}")["paused_at"] is None, \
        "a cross-site page paused a deployment"
    checks.measured["cross-site attempts refused"] = 5

    # DNS rebinding: Chromium resolves the page's own name to the server.
    port = base.rsplit(":", 1)[1]
    rebound = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--host-resolver-rules=MAP rebound.example 127.0.0.1"])
    try:
        page = rebound.new_page()
        answer = page.goto(f"http://rebound.example:{port}/ui")
        assert answer.status == 421, f"the dashboard under a rebound name: {answer.status}"
        assert "--allowed-host rebound.example" in page.content()
        status = page.evaluate("""async () => (await fetch("/deployments", {method: "POST",
            headers: {"Content-Type": "application/json"},
            body: JSON.stringify({name: "rebound", target_node_count: 1})})).status""")
        assert status == 421, f"a rebound page's call: {status}"
        read = page.evaluate("async () => (await fetch('/deployments')).status")
        assert read == 421, f"a rebound page's read: {read}"
    finally:
        rebound.close()
    assert "rebound" not in [d["name"] for d in http("GET", f"{base}/deployments?limit=1000")]

    # A description may hold a right-to-left override: it is shown, not obeyed.
    shown = http("POST", f"{base}/deployments",
                 {"name": "inert", "description": "invoice\u202efdp.exe", "target_node_count": 1})
    page = checks.page(DESKTOP)
    checks.open(page, f"{base}/ui/deployments/{shown['id']}", "deployment")
    text = page.locator("main p.muted bdi").first.inner_text()
    assert text == "invoice⟨U+202E⟩fdp.exe", f"the description reads {text!r}"
    checks.shoot(page, "description-inert")
    page.context.close()


def walk(checks, base):
    """A new user: create, watch, retry, diagnose and delete, without curl."""
    page = checks.page(DESKTOP)
    ready_ms = checks.open(page, f"{base}/ui", "fleet")
    checks.measured["fleet page interactive, empty (ms)"] = round(ready_ms)
    checks.accessible(page, "empty fleet")
    checks.shoot(page, "fleet-empty-desktop")

    # Keyboard only: Tab to the name field, fill the form, Enter submits it.
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "f-name":
            break
    else:
        raise AssertionError("Tab never reached the form's name field")
    page.keyboard.type("edge-east")
    page.keyboard.press("Tab")
    page.keyboard.type("rack 4")
    page.keyboard.press("Tab")
    page.keyboard.press("Control+A")
    page.keyboard.type("40")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/ui/deployments/\d+$"))
    deployment = int(page.url.rsplit("/", 1)[1])
    page.wait_for_selector("body[data-ready=deployment]")
    # Live: the same page, never reloaded, shows every node finished (38 RUNNING, nodes 19 and
    # 39 FAILED as the simulator decides) from the event stream.
    page.evaluate("window.stillTheSamePage = true")
    # A keyboard user on a count link keeps the focus through the live redraws.
    page.locator("[data-state=RUNNING]").focus()
    expect(page.locator("[data-state=RUNNING] strong")).to_have_text("38", timeout=60_000)
    assert page.evaluate("document.activeElement.dataset.state") == "RUNNING", \
        "a live refresh took the keyboard focus away"

    expect(page.locator("[data-state=FAILED] strong")).to_have_text("2")
    expect(page.locator("#progress-text")).to_contain_text("40 of 40")
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    # The stream opened at the newest 50 events (tail=50) and followed the log to its end: every
    # event after that arrived (121 in all: how many came before the page opened depends on the
    # machine's load).
    wait_until("the page to receive the newest events",
               lambda: caught_up(page, base, deployment), 10, 0.1)
    received = int(page.evaluate("document.body.dataset.eventsReceived || 0"))
    assert received >= 50, f"only {received} live events arrived"
    assert page.locator("ol.events li").count() >= 50
    # The log names nodes as their pages do (node-019, not its numeric id), each a link.
    node_links = page.locator("ol.events li a[data-node]")
    assert node_links.count() >= 40, f"{node_links.count()} node links in the event log"
    expect(node_links.first).to_have_text(re.compile(r"^node-\d{3}$"))
    assert not re.search(r"Node \d+ transitioned", page.locator("ol.events").inner_text())
    # Telemetry flows once nodes run: with the default range (since it was created) the young
    # deployment's charts span its life, so its first samples sit in the left half, not in a
    # sliver at the right edge; they refresh every 3 s while it is young.
    expect(page.locator("#range")).to_have_value("0")
    expect(page.locator(".charts .chart canvas")).to_have_count(3, timeout=30_000)
    chart = page.locator(".charts .chart").first
    start, end, first = (float(chart.get_attribute(a))
                         for a in ("data-x-start", "data-x-end", "data-first-point"))
    share = (first - start) / (end - start)
    assert 0 <= share < 0.5, f"the first sample sits at {share:.0%} of the chart's width"
    checks.measured["young deployment's first sample, share of the chart width"] = round(share, 2)
    # Finished with failures: no pause to offer, a retry of all failed nodes instead, and the
    # bottleneck report already read (metrics named as words), and when the page last read.
    expect(page.get_by_role("button", name="Pause rollout")).to_have_count(0)
    expect(page.get_by_role("button", name="Retry all 2 failed")).to_be_visible()
    expect(page.locator(".report [role=status]")).to_contain_text("nodes (", timeout=30_000)
    assert "_ms" not in page.locator(".report").inner_text()
    expect(page.locator(".updated time")).to_have_count(1)
    checks.accessible(page, "deployment")
    checks.shoot(page, "deployment-desktop")

    # Retry the failed node 19 from the table, filtered to FAILED.
    page.select_option("#node-filter", "FAILED")
    expect(page.locator("table.nodes tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Retry node-019").click()
    expect(page.locator("[data-state=RUNNING] strong")).to_have_text("39", timeout=30_000)
    expect(page.locator("table.nodes tbody tr")).to_have_count(1)
    page.select_option("#node-filter", "")

    # Pause (through the API: a finished rollout offers no pause button), scale up by two while
    # paused (the new nodes wait in PENDING), resume (they come up).
    http("POST", f"{base}/deployments/{deployment}/pause")
    expect(page.get_by_role("button", name="Resume rollout")).to_be_visible()
    page.fill("#scale-count", "42")
    page.get_by_role("button", name="Scale").click()
    expect(page.locator("#progress-text")).to_contain_text("of 42")
    expect(page.locator(".summary .badge")).to_have_text("PAUSED")
    expect(page.locator("[data-state=PENDING] strong")).to_have_text("2")
    page.get_by_role("button", name="Resume rollout").click()
    expect(page.locator("[data-state=RUNNING] strong")).to_have_text("41", timeout=30_000)
    expect(page.get_by_role("button", name="Pause rollout")).to_have_count(0)
    # Retry all failed (node-039), confirming the dialog.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Retry all 1 failed").click()
    expect(page.locator("[data-state=FAILED] strong")).to_have_text("0", timeout=30_000)

    # The bottleneck report, each bottleneck linking to its node.
    page.select_option("#method", "zscore")
    page.get_by_role("button", name="Find bottlenecks").click()
    expect(page.locator(".report [role=status]")).to_contain_text("nodes (", timeout=30_000)

    # A node: its history and its three charts with min/max bands.
    page.locator("table.nodes").get_by_role("link", name="node-019").click()
    page.wait_for_selector("body[data-ready=node]")
    expect(page.locator("dl.facts")).to_contain_text("RUNNING", timeout=30_000)
    expect(page.locator("dl.facts")).to_contain_text("1")  # attempt 1 after the retry
    expect(page.locator("table.history tbody")).to_contain_text("NODE_RETRY")
    expect(page.locator("table.history tbody")).to_contain_text("node-019 retried (attempt 1)")
    page.select_option("#range", str(15 * 60))
    expect(page.locator(".charts .chart canvas")).to_have_count(3, timeout=30_000)
    checks.accessible(page, "node")
    checks.shoot(page, "node-desktop")

    # Delete, confirming the dialog; back on the fleet, the deployment is gone.
    page.goto(f"{base}/ui/deployments/{deployment}")
    page.wait_for_selector("body[data-ready=deployment]")
    dialogs = []
    page.once("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.get_by_role("button", name="Delete deployment…").click()
    page.wait_for_url(re.compile(r"/ui$"))
    page.wait_for_selector("body[data-ready=fleet]")
    assert dialogs and "42 nodes" in dialogs[0], dialogs
    expect(page.locator("table.deployments")).not_to_contain_text("edge-east")
    checks.shoot(page, "fleet-after-delete-desktop")

    # An error is shown, not swallowed: a node that does not exist.
    since = len(checks.console_errors)
    page.goto(f"{base}/ui/deployments/{deployment}/nodes/node-001")
    expect(page.locator("#errors")).to_contain_text("404")
    checks.expect_logged(since, 404)
    page.context.close()
    return deployment


def alert_views(checks, base):
    """Firing alerts on the deployment and fleet pages: live, acknowledged, silenced."""
    created = http("POST", f"{base}/deployments", {
        "name": "alert-watch", "target_node_count": 20,
        "alert_rules": {"bottleneck": {"window_seconds": 60, "for_seconds": 1,
                                       "resolve_after_seconds": 600}}})
    deployment = created["id"]
    page = checks.page(DESKTOP)
    checks.open(page, f"{base}/ui/deployments/{deployment}", "deployment")
    page.evaluate("window.stillTheSamePage = true")
    # The simulated hardware degrades the nodes whose ids end in 8 or 9: once they run and their
    # samples stand out for a second, they fire, and the page shows it without a reload.
    firing_rows = page.locator("table.alerts tbody tr[data-state=firing]")
    expect(firing_rows.first).to_be_visible(timeout=120_000)
    assert page.evaluate("window.stillTheSamePage === true"), "the page reloaded"
    # The node table marks the alerting nodes: firing ones (none resolves within the check).
    expect(page.locator("table.nodes [data-alerting]").first).to_be_visible(timeout=15_000)
    marked = page.locator("table.nodes [data-alerting]").evaluate_all(
        "els => els.map(e => e.dataset.alerting)")
    firing = {a["node_name"] for a in http(
        "GET", f"{base}/deployments/{deployment}/alerts?state=firing")["alerts"]}
    assert marked and set(marked) <= firing, (marked, firing)

    # Acknowledge the first with a comment; the row says who and why.
    first = page.locator("table.alerts tbody tr[data-state=firing]").first
    node = first.locator("td").nth(1).locator("a").inner_text()
    page.once("dialog", lambda d: d.accept("rack 4 power work, on it"))
    page.get_by_role("button", name=f"Acknowledge NetorchNodeBottleneck on {node}").click()
    row = page.locator("table.alerts tbody tr").filter(
        has=page.get_by_role("link", name=node, exact=True))
    expect(row).to_contain_text("acknowledged by anonymous", timeout=15_000)
    expect(row).to_contain_text("rack 4 power work, on it")
    expect(row.get_by_role("button", name=f"Unacknowledge NetorchNodeBottleneck on {node}")) \
        .to_be_visible()
    acked = [a for a in http("GET", f"{base}/deployments/{deployment}/alerts?acknowledged=true")[
        "alerts"] if a["node_name"] == node]
    assert acked and acked[0]["acknowledgement"]["comment"] == "rack 4 power work, on it", acked
    # The acknowledgement is in the live event list too.
    expect(page.locator("ol.events")).to_contain_text("ALERT_ACKNOWLEDGED", timeout=15_000)

    # Silence it (for the chosen hours): the row says silenced, and the API agrees.
    page.select_option("#silence-hours", "4")
    page.once("dialog", lambda d: d.accept("maintenance window"))
    page.get_by_role("button", name=f"Silence NetorchNodeBottleneck on {node}").click()
    expect(row).to_contain_text("silenced (#", timeout=15_000)
    silenced = http("GET", f"{base}/deployments/{deployment}/alerts?silenced=true")["alerts"]
    assert any(a["node_name"] == node for a in silenced), silenced
    silence = http("GET", f"{base}/silences")["silences"][0]
    assert silence["comment"] == "maintenance window", silence
    assert {"name": "node", "value": node, "is_regex": False, "is_equal": True} in \
        silence["matchers"], silence
    checks.accessible(page, "deployment with alerts")
    checks.shoot(page, "deployment-alerts-desktop")

    # The fleet page counts the deployment's firing alerts as the API does.
    checks.open(page, f"{base}/ui", "fleet")
    cell = page.locator("table.deployments tbody tr").filter(
        has=page.get_by_role("link", name="alert-watch", exact=True)).locator("[data-firing]")

    def counted_as_the_api_does():
        count = len(http("GET", f"{base}/deployments/{deployment}/alerts?state=firing")["alerts"])
        shown = cell.get_attribute("data-firing")
        return count > 0 and shown == str(count) and f"{count} firing" in cell.inner_text()
    wait_until("the fleet page's firing count to be the API's", counted_as_the_api_does, 15)
    checks.accessible(page, "fleet with alerts")
    checks.shoot(page, "fleet-alerts-desktop")
    page.context.close()
    http("DELETE", f"{base}/deployments/{deployment}")


def phone(checks, base):
    """Every page on a 390-pixel-wide screen."""
    created = http("POST", f"{base}/deployments",
                   {"name": "phone-check", "target_node_count": 20})
    deployment = created["id"]
    wait_until("the phone deployment to finish", lambda: http(
        "GET", f"{base}/deployments/{deployment}")["progress"]["finished"] == 20)
    page = checks.page(PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    # Each row of the fleet's and the nodes' tables is a card: what matters first, nothing
    # off-screen (the failed nodes' page, so that its cards hold a Retry button).
    cards = {
        "fleet": ("deployments", ["Name", "Status", "Progress", "Failed", "Created"]),
        "deployment": ("nodes", ["Node", "State", "Since", "Failure"]),
    }
    pages = [
        ("fleet", f"{base}/ui", "fleet"),
        ("deployment", f"{base}/ui/deployments/{deployment}?state=FAILED", "deployment"),
        ("node", f"{base}/ui/deployments/{deployment}/nodes/node-001", "node"),
    ]
    for name, url, kind in pages:
        checks.open(page, url, kind)
        if kind != "fleet":
            expect(page.locator(".charts .chart canvas, .charts .empty").first).to_be_visible(
                timeout=30_000)
        if name in cards:
            table, labels = cards[name]
            row = page.locator(f"table.{table} tbody tr").first
            for label in labels:
                cell = row.locator(f"td[data-label='{label}']")
                expect(cell).to_be_visible()
                box = cell.bounding_box()
                assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], \
                    f"{name} (phone): {label} is off-screen at {box}"
            if table == "nodes":
                retry = row.get_by_role("button", name=re.compile(r"^Retry node-"))
                box = retry.bounding_box()
                assert box and box["x"] + box["width"] <= PHONE["width"], f"retry at {box}"
        checks.fits(page, f"{name} (phone)", PHONE["width"])
        checks.accessible(page, f"{name} (phone)")
        checks.shoot(page, f"{name}-phone")
    page.context.close()


def fleet_basics(checks, base):
    """The fleet page as a NetBox or Grafana user expects it: totals, search, filter, sort,
    names told apart by their ids, and when the page was last read."""
    ids = [http("POST", f"{base}/deployments", {"name": name, "target_node_count": 3})["id"]
           for name in ("dc-west", "dc-west", "Lab-East")]
    for d in ids:
        wait_until("the small deployments to finish", lambda d=d: http(
            "GET", f"{base}/deployments/{d}")["progress"]["finished"] == 3)
    fleet = http("GET", f"{base}/fleet")
    page = checks.page(DESKTOP)
    checks.open(page, f"{base}/ui", "fleet")
    totals = page.locator(".totals")
    expect(totals).to_contain_text(f"{fleet['deployments']['total']} deployments")
    expect(totals).to_contain_text("alerts firing")
    expect(page.locator(".updated time")).to_have_count(1)
    # Two deployments of one name, each with its id beside it.
    for d in ids[:2]:
        expect(page.locator("table.deployments tbody")).to_contain_text(f"#{d}")
    # A search is where the data is (any case), and kept in the address.
    page.fill("#fleet-name", "DC-WEST")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.deployments tbody tr")).to_have_count(2)
    assert "name=DC-WEST" in page.url, page.url
    page.select_option("#fleet-sort", "oldest")
    expect(page.locator("table.deployments tbody tr").first).to_contain_text(f"#{ids[0]}")
    page.select_option("#fleet-status", "PAUSED")
    expect(page.locator("table.deployments tbody")).to_contain_text("No deployment matches.")
    page.fill("#fleet-name", "")
    page.select_option("#fleet-status", "COMPLETE")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.deployments tbody")).to_contain_text("Lab-East")
    checks.accessible(page, "fleet, searched")
    checks.shoot(page, "fleet-searched-desktop")
    chart_rules(page)
    page.context.close()


def chart_rules(page):
    """The charts' pure rules (charts.js), run in the browser that runs them."""
    got = page.evaluate("""async () => {
        const c = await import("/ui/assets/charts.js");
        const now = new Date(Date.UTC(2026, 11, 6, 8, 40, 0));
        const ago = (s) => new Date(now.getTime() - s * 1000);
        const bucket = (d) => ({ timestamp: d.toISOString().replace("Z", "") });
        const t = Date.UTC(2026, 11, 6, 20, 40, 5) / 1000;
        return {
            young: c.chartRange(0, ago(180), now).map((d) => d.getTime()),
            old: c.chartRange(0, ago(3 * 86400), now).map((d) => d.getTime()),
            hour: c.chartRange(3600, ago(180), now).map((d) => d.getTime()),
            fitted: c.drawnRange([ago(180), now], [bucket(ago(120))], true).map((d) => d.getTime()),
            unfitted: c.drawnRange([ago(180), now], [bucket(ago(120))], false).map((d) => d.getTime()),
            noise: c.yRange(19.06, 19.07, 1),
            flat: c.yRange(0, 0.001, 0.1),
            wide: c.yRange(10, 50, 1),
            seconds: c.timeLabels([t, t + 30], 3600),
            minutes: c.timeLabels([t, t + 300], 3600),
            days: c.timeLabels([t], 3 * 86400),
            values: c.valueLabels([19, 19.5, 20]),
            fine: c.valueLabels([0.01, 0.02]),
            quarters: c.valueLabels([0, 2.5, 5]),
            eighths: c.valueLabels([0, 0.25, 0.5]),
            young_refresh: c.chartRefreshMs(ago(180), now),
            old_refresh: c.chartRefreshMs(ago(3600), now),
            words: c.METRICS.map((m) => m.word),
        };
    }""")
    now = 1_796_546_400_000  # 2026-12-06 08:40:00 UTC
    assert got["young"] == [now - 180_000, now], got["young"]      # since its creation
    assert got["old"] == [now - 86_400_000, now], got["old"]       # at most its last day
    assert got["hour"] == [now - 3_600_000, now], got["hour"]
    assert got["fitted"] == [now - 120_000, now], got["fitted"]    # from its first sample
    assert got["unfitted"] == [now - 180_000, now], got["unfitted"]
    low, high = got["noise"]
    assert abs(high - low - 1.907) < 1e-9 and low < 19.06 and high > 19.07, got["noise"]
    assert got["flat"] == [0, 0.1], got["flat"]                    # never below 0
    assert got["wide"] == [8, 52], got["wide"]                     # data wider: 5 % margins
    assert got["seconds"] == ["20:40:05", "20:40:35"], got["seconds"]  # 24-hour UTC
    assert got["minutes"] == ["20:40", "20:45"], got["minutes"]
    assert got["days"] == ["12-06 20:40"], got["days"]
    assert got["values"] == ["19.0", "19.5", "20.0"], got["values"]
    assert got["fine"] == ["0.01", "0.02"], got["fine"]
    assert got["quarters"] == ["0.0", "2.5", "5.0"], got["quarters"]
    assert got["eighths"] == ["0.00", "0.25", "0.50"], got["eighths"]
    assert (got["young_refresh"], got["old_refresh"]) == (3000, 15000), got
    assert got["words"] == ["Latency", "Throughput", "Error rate"], got["words"]


def fleet_health(checks, binary, work, base):
    """The fleet's health on every page: a quiet line when workers run; with none (a server
    started with --workers none and no netorch-worker), a banner saying what stops and what to
    do, on the fleet page and on a deployment's page that would otherwise show 0 of 3 forever.
    Then the dead ends: a deleted deployment's page, one that never existed, a missing page."""
    page = checks.page(DESKTOP)
    checks.open(page, f"{base}/ui", "fleet")
    expect(page.locator("#health")).to_have_attribute("data-health", "healthy")
    expect(page.locator("#health")).to_contain_text("worker loops alive, database writable")
    server, alone = start_server(binary, work, "no-workers", "--workers", "none")
    try:
        created = http("POST", f"{alone}/deployments", {"name": "stuck", "target_node_count": 3})
        for path in ["/ui", f"/ui/deployments/{created['id']}"]:
            page.goto(f"{alone}{path}")
            banner = page.locator("#health")
            expect(banner).to_have_attribute("data-health", "degraded")
            expect(banner).to_contain_text("No lifecycle worker is running: rollouts do not move")
            expect(banner).to_contain_text("netorch-worker --database-url")
        checks.accessible(page, "workers down")
        checks.shoot(page, "deployment-workers-down")

        # Dead ends: a deleted deployment's page says when and by whom, with its history; one
        # that never existed, and a page the dashboard does not have, say "not found" (the
        # latter answered 404) with a way back.
        since = len(checks.console_errors)
        http("DELETE", f"{alone}/deployments/{created['id']}")
        checks.open(page, f"{alone}/ui/deployments/{created['id']}", "deployment-deleted")
        expect(page.locator("main")).to_contain_text("This deployment was deleted on")
        expect(page.locator("main h1")).to_contain_text("stuck")
        expect(page.locator("main table")).to_contain_text("DEPLOYMENT_DELETED")
        expect(page.locator("main table")).to_contain_text("DEPLOYMENT_CREATED")
        checks.accessible(page, "deleted deployment")
        checks.shoot(page, "deployment-deleted")
        checks.open(page, f"{alone}/ui/deployments/999", "not-found")
        expect(page.locator("main")).to_contain_text("there never was one")
        response = page.goto(f"{alone}/ui/nope")
        assert response.status == 404, response.status
        page.wait_for_selector("body[data-ready=not-found]")
        expect(page.locator("main h1")).to_have_text("Not found")
        expect(page.get_by_role("link", name="Back to the fleet")).to_have_attribute("href", "/ui")
        checks.accessible(page, "not found")
        checks.expect_logged(since, 404)
    finally:
        # Closed before its server stops: an open page would keep calling it.
        page.context.close()
        server.terminate()
        server.wait(timeout=30)


def provisioner_runs(checks, binary, work):
    """A node of a `command` provisioner profile: its page shows its runs, the failing one's
    message and, opened, its standard error (docs/PROVISIONERS.md)."""
    script = os.path.join(work, "provision.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\ncat > /dev/null\n"
                "if [ \"$1\" = configure ]; then\n"
                "  echo 'switch said: VLAN 120 is reserved' >&2\n"
                "  echo '{\"message\": \"VLAN 120 is reserved on this switch\"}'\n"
                "  exit 3\nfi\n")
    os.chmod(script, 0o755)
    profiles = os.path.join(work, "provisioners.toml")
    with open(profiles, "w") as f:
        f.write(f'[profiles.lab]\nkind = "command"\ncommand = ["{script}"]\n')
    server, base = start_server(binary, work, "runs", "--time-scale", "10",
                                "--provisioners", profiles)
    try:
        created = http("POST", f"{base}/deployments",
                       {"name": "lab", "target_node_count": 1, "provisioner": "lab"})
        wait_until("the node failed at configure", lambda: http(
            "GET", f"{base}/deployments/{created['id']}/nodes/node-001")["state"] == "FAILED")
        page = checks.page(DESKTOP)
        checks.open(page, f"{base}/ui/deployments/{created['id']}/nodes/node-001", "node")
        runs = page.locator("section[aria-labelledby=runs-title]")
        expect(runs.locator("article.run")).to_have_count(2)
        first = runs.locator("article.run").first
        expect(first).to_contain_text("configure")
        expect(first).to_contain_text("failed")
        expect(first).to_contain_text("exit 3")
        expect(first).to_contain_text("VLAN 120 is reserved on this switch")
        stderr = first.locator("details").filter(has_text="standard error")
        stderr.get_by_text("standard error").click()
        expect(stderr.locator("pre")).to_be_visible()
        expect(stderr.locator("pre")).to_contain_text("switch said: VLAN 120 is reserved")
        expect(runs.locator("article.run").nth(1)).to_contain_text("succeeded")
        checks.accessible(page, "node runs")
        checks.shoot(page, "node-runs-desktop")
        page.context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def self_healing(checks, binary, work):
    """Self-healing on the deployment and node pages: a deployment whose degraded nodes were
    re-provisioned lists them; one past its budget says why it stopped; a remediated node's
    page counts its remediation."""
    server, base = start_server(binary, work, "healing", "--time-scale", "20")
    quick = {"bottleneck": {"window_seconds": 30, "for_seconds": 2, "resolve_after_seconds": 2}}
    try:
        healing = http("POST", f"{base}/deployments", {
            "name": "healing", "target_node_count": 20, "max_retries": 5, "alert_rules": quick,
            "remediation": {"after_seconds": 0, "max_concurrent": 2,
                            "max_unhealthy_percent": 100}})
        stopped = http("POST", f"{base}/deployments", {
            "name": "stopped", "target_node_count": 20, "alert_rules": quick,
            "remediation": {"max_unhealthy_percent": 5}})
        events = lambda d, kind: http(
            "GET", f"{base}/deployments/{d}/events?event_type={kind}&limit=100")["events"]
        first = wait_until("a node remediated", lambda: events(healing["id"], "NODE_REMEDIATED"),
                           timeout=120)[0]
        name = first["metadata"]["node_name"]
        wait_until("the other deployment stopped", lambda: http(
            "GET", f"{base}/deployments/{stopped['id']}")["remediation_stopped"], timeout=120)
        page = checks.page(DESKTOP)
        checks.open(page, f"{base}/ui/deployments/{healing['id']}", "deployment")
        section = page.locator("section[aria-labelledby=healing-title]")
        expect(section.locator("[data-healing=on]")).to_contain_text("at most 2 at once")
        expect(section.locator(f"li[data-remediated='{name}']").first).to_contain_text(
            first["metadata"]["alert_fingerprint"])
        checks.accessible(page, "self-healing")
        checks.shoot(page, "self-healing-desktop")
        section.locator(f"li[data-remediated='{name}'] a").first.click()
        page.wait_for_selector("body[data-ready=node]")
        expect(page.locator("dl")).to_contain_text("Remediations")
        wait_until("the node page counts it", lambda: http(
            "GET", f"{base}/deployments/{healing['id']}/nodes/{name}")["remediations"] >= 1)
        checks.open(page, f"{base}/ui/deployments/{stopped['id']}", "deployment")
        notice = page.locator("[data-healing-stopped]")
        expect(notice).to_contain_text("Stopped since")
        expect(notice).to_contain_text("more than max_unhealthy_percent 5")
        checks.accessible(page, "self-healing stopped")
        page.context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def roles(checks, binary, work):
    """With keys on: the token field, and what each role is offered."""
    database = f"sqlite://{work}/keys.db"
    tokens = {}
    for role in ["viewer", "operator", "admin"]:
        out = subprocess.run(
            [binary, "--database-url", database, "keys", "create", "--create-database",
             "--name", f"ui-{role}", "--role", role], check=True, capture_output=True, text=True).stdout
        tokens[role] = re.search(r"ntk_[0-9a-f]{64}", out).group(0)
    server, base = start_server(binary, work, "keys", "--auth", "keys", "--time-scale", "10")
    try:
        # A rollout that stays in progress through the walk (about 30 s at this time scale):
        # pause is offered only while a rollout progresses.
        created = http("POST", f"{base}/deployments",
                       {"name": "keyed", "target_node_count": 30, "max_in_flight": 1},
                       token=tokens["admin"])
        page = checks.page(DESKTOP)
        since = len(checks.console_errors)
        page.goto(f"{base}/ui")
        # No token yet: the page says what it needs, with the focus in the token field.
        expect(page.locator("#whoami")).to_contain_text("token")
        expect(page.locator("main")).to_contain_text("asks for an API key")
        assert page.evaluate("document.activeElement.id") == "token"
        checks.accessible(page, "token needed")
        checks.shoot(page, "fleet-token-needed")
        # A wrong token is refused, and said so.
        page.fill("#token", "ntk_" + "0" * 64)
        page.get_by_role("button", name="Use").click()
        expect(page.locator("main")).to_contain_text("refused the token")
        checks.expect_logged(since, 401)

        def use(role):
            page.fill("#token", tokens[role])
            page.get_by_role("button", name="Use").click()
            expect(page.locator("#whoami")).to_contain_text(f"ui-{role} ({role})")

        use("viewer")
        page.wait_for_selector("body[data-ready=fleet]")
        expect(page.locator("form.create")).to_have_count(0)
        expect(page.locator("main")).to_contain_text("may not create deployments")
        page.goto(f"{base}/ui/deployments/{created['id']}")
        page.wait_for_selector("body[data-ready=deployment]")
        expect(page.locator(".actions")).to_contain_text("may only look")
        expect(page.get_by_role("button", name="Pause rollout")).to_have_count(0)
        # A viewer reads alerts but is offered no acknowledge or silence.
        expect(page.locator("section.alerts")).to_be_visible()
        expect(page.locator("#silence-hours")).to_have_count(0)

        page.goto(f"{base}/ui")
        use("operator")
        page.wait_for_selector("body[data-ready=fleet]")
        expect(page.locator("form.create")).to_have_count(1)
        page.goto(f"{base}/ui/deployments/{created['id']}")
        page.wait_for_selector("body[data-ready=deployment]")
        expect(page.get_by_role("button", name="Pause rollout")).to_have_count(1)
        expect(page.get_by_role("button", name="Delete deployment…")).to_have_count(0)
        expect(page.locator("#silence-hours")).to_have_count(1)
        # The token is kept for the tab's session only.
        assert page.evaluate("sessionStorage.getItem('netorch.token')") == tokens["operator"]
        assert page.evaluate("localStorage.length") == 0

        page.goto(f"{base}/ui")
        use("admin")
        page.goto(f"{base}/ui/deployments/{created['id']}")
        page.wait_for_selector("body[data-ready=deployment]")
        expect(page.get_by_role("button", name="Delete deployment…")).to_have_count(1)
        since = len(checks.console_errors)
        page.get_by_role("button", name="Forget").click()
        expect(page.locator("#whoami")).to_contain_text("token")
        checks.expect_logged(since, 401)
        page.context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def speed(checks, binary, work, fleet_nodes):
    """The fleet page and a 10,000-node deployment page interactive within the budget, and a
    large rollout followed live."""
    server, base = start_server(binary, work, "speed", "--max-nodes-per-deployment",
                                str(max(fleet_nodes, 10_000)), "--time-scale", "10")
    try:
        # Twenty deployments on the fleet page, one of them 10,000 nodes.
        for i in range(19):
            http("POST", f"{base}/deployments", {"name": f"small-{i}", "target_node_count": 50})
        big = http("POST", f"{base}/deployments", {"name": "big", "target_node_count": 10_000})
        page = checks.page(DESKTOP)
        fleet_ms, deployment_ms = [], []
        for _ in range(5):
            fleet_ms.append(checks.open(page, f"{base}/ui", "fleet"))
            deployment_ms.append(checks.open(page, f"{base}/ui/deployments/{big['id']}",
                                             "deployment"))
        checks.measured["fleet page interactive, 20 deployments (ms)"] = \
            [round(x) for x in fleet_ms]
        checks.measured["10,000-node deployment page interactive (ms)"] = \
            [round(x) for x in deployment_ms]
        assert max(fleet_ms) < READY_BUDGET_MS, fleet_ms
        assert max(deployment_ms) < READY_BUDGET_MS, deployment_ms
        checks.shoot(page, "deployment-10000-desktop")

        # A large rollout, followed live from its start.
        wait_until("the 10,000 nodes to finish", lambda: http(
            "GET", f"{base}/deployments/{big['id']}")["progress"]["finished"] == 10_000, 300, 1)
        rollout = http("POST", f"{base}/deployments",
                       {"name": "rollout", "target_node_count": fleet_nodes})
        checks.open(page, f"{base}/ui/deployments/{rollout['id']}", "deployment")
        # How late a 100 ms timer fires at worst while the events pour in: how long the page
        # stops answering its user.
        page.evaluate("""() => {
            window.worstTimerDelay = 0;
            let last = performance.now();
            setInterval(() => {
                const now = performance.now();
                window.worstTimerDelay = Math.max(window.worstTimerDelay, now - last - 100);
                last = now;
            }, 100);
        }""")
        started = time.time()
        seen_progress = set()

        def finished():
            seen_progress.add(page.locator("#progress-text").inner_text())
            return http("GET", f"{base}/deployments/{rollout['id']}")["progress"]["finished"] \
                == fleet_nodes

        wait_until(f"the {fleet_nodes}-node rollout to finish", finished, 900, 0.25)
        done = time.time()
        everything = f"{fleet_nodes:,} of {fleet_nodes:,}"
        expect(page.locator("#progress-text")).to_contain_text(everything, timeout=60_000)

        # Caught up with the log: nothing after the last event the page received.
        wait_until("the page to receive every event",
                   lambda: caught_up(page, base, rollout["id"]), 60, 0.1)
        lag = time.time() - done
        received = int(page.evaluate("document.body.dataset.eventsReceived || 0"))
        worst_delay = page.evaluate("window.worstTimerDelay")
        checks.measured[f"{fleet_nodes:,}-node rollout"] = {
            "rollout seconds": round(done - started, 1),
            "page behind the end by (s)": round(lag, 2),
            "events received live": received,
            "progress values seen": len(seen_progress),
            "worst main-thread stall (ms)": round(worst_delay),
        }
        assert lag < 5, f"the page caught up {lag:.1f} s after the rollout finished"
        assert worst_delay < 1000, f"the page stopped answering for {worst_delay:.0f} ms"

        # The node table at that size: the last page, and a state filter.
        last_page = (fleet_nodes - 1) // 50 * 50
        ready_ms = checks.open(
            page, f"{base}/ui/deployments/{rollout['id']}?skip={last_page}", "deployment")
        expect(page.locator("table.nodes tbody tr").last).to_contain_text(
            f"node-{fleet_nodes:03d}")
        expect(page.locator(".pager").first).to_contain_text(
            f"{last_page + 1:,}–{fleet_nodes:,} of {fleet_nodes:,}")
        page.select_option("#node-filter", "FAILED")
        failed = http("GET", f"{base}/deployments/{rollout['id']}")["node_states"]["FAILED"]
        # The filtered count of 100,000 nodes: one CI run's page took over 5 s to show it.
        expect(page.locator(".pager").first).to_contain_text(f"of {failed:,}", timeout=30_000)
        checks.measured[f"{fleet_nodes:,}-node deployment, last node page interactive (ms)"] = \
            round(ready_ms)
        assert len(seen_progress) > 3, "the progress did not move while the rollout ran"
        page.context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def readme_screenshot(checks, binary, work, path):
    """The deployment page as the README shows it: a 40-node deployment with an hour of pushed
    telemetry (two slow nodes) and its bottleneck report."""
    import random
    from datetime import datetime, timedelta, timezone
    server, base = start_server(binary, work, "readme", "--time-scale", "10")
    try:
        d = http("POST", f"{base}/deployments",
                 {"name": "edge-east", "description": "rack 4", "target_node_count": 40})
        wait_until("the deployment to finish", lambda: http(
            "GET", f"{base}/deployments/{d['id']}")["progress"]["finished"] == 40)
        nodes = http("GET", f"{base}/deployments/{d['id']}/nodes")["nodes"]
        rng = random.Random(7)
        now = datetime.now(timezone.utc)
        samples = []
        for step in range(120):
            at = (now - timedelta(seconds=30 * (120 - step))).isoformat()
            wave = 1 + 0.15 * ((step % 40) / 40)
            for node in nodes:
                slow = node["node_id"] in ("node-008", "node-009") and step > 70
                samples.append({
                    "node_id": node["id"], "timestamp": at,
                    "latency_ms": rng.gauss(22 * wave, 3) + (40 if slow else 0),
                    "throughput_gbps": max(0.1, rng.gauss(9.2, 0.4) - (3 if slow else 0)),
                    "error_rate": max(0.0, rng.gauss(0.15, 0.05) + (0.8 if slow else 0)),
                })
        http("POST", f"{base}/deployments/{d['id']}/telemetry", {"samples": samples})
        page = checks.page({"width": 1280, "height": 1180})
        checks.open(page, f"{base}/ui/deployments/{d['id']}", "deployment")
        page.get_by_role("button", name="Find bottlenecks").click()
        expect(page.locator(".report table")).to_be_visible(timeout=30_000)
        expect(page.locator(".charts .chart canvas")).to_have_count(3, timeout=30_000)
        page.wait_for_timeout(300)
        page.screenshot(path=path)
        page.context.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", "target"))
    parser.add_argument("--rollout-nodes", type=int, default=100_000,
                        help="the large rollout followed live (default 100,000)")
    parser.add_argument("--shots", default="target/ui-screenshots")
    parser.add_argument("--readme-screenshot", metavar="PNG",
                        help="only take the README's screenshot of the deployment page")
    args = parser.parse_args()
    binary = os.path.join(args.target_dir, "release", "netorch-server")
    os.makedirs(args.shots, exist_ok=True)
    work = tempfile.mkdtemp(prefix="netorch-browser-")
    if args.readme_screenshot:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            readme_screenshot(Checks(browser, args.shots), binary, work, args.readme_screenshot)
            browser.close()
        return 0
    server, base = start_server(binary, work, "walk", "--time-scale", "10")
    failed = False
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        checks = Checks(browser, args.shots)
        try:
            walk(checks, base)
            fleet_health(checks, binary, work, base)
            alert_views(checks, base)
            fleet_basics(checks, base)
            phone(checks, base)
            hostile(checks, playwright, base)
            server.terminate()
            server.wait(timeout=30)
            roles(checks, binary, work)
            provisioner_runs(checks, binary, work)
            self_healing(checks, binary, work)
            speed(checks, binary, work, args.rollout_nodes)
            assert not checks.console_errors, f"console errors: {checks.console_errors}"
        except Exception:
            failed = True
            raise
        finally:
            if server.poll() is None:
                server.terminate()
            browser.close()
            print(json.dumps(checks.measured, indent=2))
            print(f"browser check: {'FAILED' if failed else 'passed'}; screenshots in "
                  f"{args.shots}; server logs in {work}")


if __name__ == "__main__":
    sys.exit(main())
