// netorch's dashboard: draws the page for the current path from the API, follows a deployment
// live through its event stream, and sends the API token kept in session storage. No framework
// and no build step: this file is served as written (see crates/netorch_api/src/ui.rs), a
// module that imports the alert views from alerts.js.
"use strict";

import { alertViews, touchesAlerts } from "/ui/assets/alerts.js";
import { watchHealth } from "/ui/assets/health.js";

(() => {
  const body = document.body;
  // The closed lists come from the server's enums, through the page's shell.
  const NODE_STATES = body.dataset.nodeStates.split(" ");
  /**
   * Characters that show as nothing or reorder the text around them (bidirectional controls),
   * as the server names them (hex ranges), and the tag characters past U+FFFF: texts show them
   * as their code points, so a description reads as what it holds.
   */
  const NOT_PLAIN = new RegExp(
    "[" +
      body.dataset.notPlain
        .split(" ")
        .map((range) => range.split("-").map((c) => `\\u{${c}}`).join("-"))
        .join("") +
      "\\u{E0000}-\\u{E007F}]",
    "gu",
  );
  const inert = (text) =>
    String(text ?? "").replace(NOT_PLAIN, (c) => `⟨U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`);
  const METHODS = body.dataset.methods.split(" ");
  const TOKEN_KEY = "netorch.token";
  const main = document.getElementById("main");
  const errorBox = document.getElementById("errors");
  const NODE_PAGE = 50;
  const FLEET_PAGE = 20;
  const EVENTS_KEPT = 100;
  const RANGES = [
    ["5 minutes", 5 * 60],
    ["15 minutes", 15 * 60],
    ["1 hour", 3600],
    ["6 hours", 6 * 3600],
    ["24 hours", 24 * 3600],
    ["7 days", 7 * 24 * 3600],
  ];
  const METRICS = [
    ["latency_ms", "Latency", "ms"],
    ["throughput_gbps", "Throughput", "Gb/s"],
    ["error_rate", "Error rate", "%"],
  ];

  /** Who the caller is (GET /whoami), or null before it is known or without a valid token. */
  let caller = null;
  /** What to stop when the page goes away: timers, streams, charts. */
  const cleanups = [];

  // ---- small helpers -------------------------------------------------------------------------

  /** An element: `h("a", {href: "/ui", class: "x", onclick: f}, "text", child, ...)`. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
      else if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
      else if (key === "style") el.style.cssText = value;
      else el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const number = (n) => Number(n).toLocaleString("en-US");
  /** The API's timestamps are UTC without an offset. */
  const parseTime = (s) => Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(s) ? s : s + "Z");
  const showTime = (s) => (s ? new Date(parseTime(s)).toISOString().slice(0, 19).replace("T", " ") + " UTC" : "");
  const percent = (part, whole) => (whole > 0 ? (100 * part) / whole : 0);

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** The error body's message: `detail` as a string, or a 422's list of fields. */
  function describe(status, data, text) {
    const detail = data && data.detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => `${(d.loc || []).slice(1).join(".") || "input"}: ${d.msg}`).join("; ");
    }
    return text ? text.slice(0, 200) : `HTTP ${status}`;
  }

  /** A response's body as JSON (null when it is empty or not JSON) and as text. */
  async function read(response) {
    const text = await response.text();
    try {
      return { data: text ? JSON.parse(text) : null, text };
    } catch (_) {
      return { data: null, text };
    }
  }

  /** The ApiError of a failed response, named after what was asked (`what`). */
  async function failure(response, what) {
    const { data, text } = await read(response);
    if (response.status === 401) setCaller(null, "A valid API token is needed: enter one above.");
    return new ApiError(response.status, `${what}: ${response.status} ${describe(response.status, data, text)}`);
  }

  /** The session token's Authorization header, if there is a token. */
  function authorization(headers) {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  /** One API call with the session's token; throws ApiError with the server's message. */
  async function api(path, { method = "GET", json, signal } = {}) {
    const headers = authorization({ Accept: "application/json" });
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      signal,
    });
    if (!response.ok) throw await failure(response, `${method} ${path}`);
    return response.status === 204 ? null : (await read(response)).data;
  }

  /** Shows an error until dismissed; never swallowed. Identical messages are not stacked. */
  function showError(error) {
    if (error && error.name === "AbortError") return;
    const message = error instanceof Error ? error.message : String(error);
    for (const existing of errorBox.querySelectorAll(".error-text")) {
      if (existing.textContent === message) return;
    }
    const item = h(
      "div",
      { class: "error" },
      h("span", { class: "error-text", text: message }),
      h("button", { type: "button", class: "link", onclick: () => item.remove(), "aria-label": "Dismiss this error" }, "Dismiss"),
    );
    errorBox.append(item);
  }

  /** Runs `work`, showing any error it throws. */
  function attempt(work) {
    return Promise.resolve()
      .then(work)
      .catch((error) => {
        showError(error);
      });
  }

  /** A function that runs `work` at most once per `ms`, the last call winning. */
  function throttle(work, ms) {
    let timer = null;
    let again = false;
    return () => {
      if (timer) {
        again = true;
        return;
      }
      attempt(work);
      timer = setTimeout(function tick() {
        timer = null;
        if (again) {
          again = false;
          attempt(work);
          timer = setTimeout(tick, ms);
        }
      }, ms);
    };
  }

  /** Runs `redraw` on `container`; a control in it that had the keyboard focus gets it back
   * (found again by its label), so live refreshes do not throw keyboard users out. */
  function keepFocus(container, redraw) {
    // A state link's text holds a live count, so it is known by its state.
    const key = (el) => el.dataset.state || el.getAttribute("aria-label") || el.textContent;
    const focused = container.contains(document.activeElement) ? document.activeElement : null;
    const label = focused && key(focused);
    redraw();
    if (!label) return;
    const again = [...container.querySelectorAll("button, a")].find((el) => key(el) === label);
    if (again) again.focus();
  }

  function every(ms, work) {
    const id = setInterval(() => {
      if (!document.hidden) attempt(work);
    }, ms);
    cleanups.push(() => clearInterval(id));
  }

  /** Marks the page interactive: its data drawn and its controls live (the browser tests
   * read the mark through the Performance API). */
  function ready(page) {
    performance.mark("netorch-ready");
    body.dataset.ready = page;
  }

  // ---- the token and the caller's role ------------------------------------------------------

  const whoami = document.getElementById("whoami");
  const tokenForm = document.getElementById("token-form");
  const tokenInput = document.getElementById("token");

  function setCaller(found, message) {
    caller = found;
    tokenForm.classList.toggle("needed", !found);
    if (found) {
      whoami.textContent = found.keys_required ? `${found.actor} (${found.role})` : "auth off: anyone may do anything";
      tokenForm.classList.toggle("auth-off", !found.keys_required);
    } else {
      whoami.textContent = message || "";
      tokenForm.classList.remove("auth-off");
    }
  }

  /** Asks who the caller is; returns a reason the pages cannot be shown, if there is one. */
  async function loadCaller() {
    try {
      setCaller(await api("/whoami"));
      return null;
    } catch (error) {
      if (error.status === 401) {
        return sessionStorage.getItem(TOKEN_KEY)
          ? "This server refused the token (unknown, revoked or expired): paste another in the API token field above."
          : "This server asks for an API key: paste a token in the API token field above (netorch-server keys create makes one).";
      }
      if (error.status === 403) {
        setCaller(null, "This key's role may not read.");
        return "This key's role may not read: the dashboard needs a viewer, operator or admin key.";
      }
      throw error;
    }
  }

  tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = tokenInput.value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    tokenInput.value = "";
    attempt(start);
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    attempt(start);
  });

  const may = (what) => Boolean(caller && caller.may[what]);
  const alerts = alertViews({ h, api, attempt, may, showTime, inert, number, keepFocus });

  // ---- shared pieces -------------------------------------------------------------------------

  function stateBar(states, total) {
    const label = NODE_STATES.filter((s) => states[s]).map((s) => `${s} ${number(states[s])}`).join(", ");
    return h(
      "div",
      { class: "statebar", role: "img", "aria-label": label || "no nodes", title: label },
      NODE_STATES.filter((s) => states[s]).map((s) => h("span", { class: `seg s-${s}`, style: `width:${percent(states[s], total)}%` })),
    );
  }

  function statusBadge(status) {
    return h("span", { class: `badge st-${status}` }, status);
  }

  /** A labelled select. */
  function select(id, label, options, value, onchange) {
    return h(
      "span",
      { class: "field" },
      h("label", { for: id }, label),
      h("select", { id, onchange }, options.map(([text, v]) => h("option", { value: v, selected: String(v) === String(value) }, text))),
    );
  }

  /** The charts' time range, in seconds back from now; `onchange` gets the new one. */
  function rangeSelect(seconds, onchange) {
    const options = RANGES.map(([text, value]) => [`last ${text}`, value]);
    return select("range", "Range", options, seconds, (e) => onchange(Number(e.target.value)));
  }

  /** Three charts (latency, throughput, error rate) of series buckets: the mean with a band
   * from min to max. */
  function drawCharts(container, buckets, range, emptyText) {
    // The charts of the last refresh go, with their resize listeners (and all of them when the
    // page is redrawn).
    if (!container.disposers) cleanups.push(() => container.disposers.splice(0).forEach((dispose) => dispose()));
    for (const dispose of container.disposers || []) dispose();
    container.disposers = [];
    container.querySelector(".empty")?.remove();
    if (!buckets.length) {
      container.append(h("p", { class: "empty muted" }, emptyText));
      return;
    }
    const xs = buckets.map((b) => parseTime(b.timestamp) / 1000);
    // Every holder first, so that each is measured in the grid's final layout.
    const holders = METRICS.map(([, title, unit]) => h("figure", { class: "chart", role: "img", "aria-label": `${title} (${unit}) over time, mean with minimum and maximum` }));
    container.append(...holders);
    METRICS.forEach(([key, title, unit], i) => {
      const holder = holders[i];
      const data = [xs, buckets.map((b) => b[key].mean), buckets.map((b) => b[key].min), buckets.map((b) => b[key].max)];
      const width = Math.max(260, holder.clientWidth || container.clientWidth || 600);
      const plot = new uPlot(
        {
          title: `${title} (${unit})`,
          width,
          height: 180,
          // The whole range asked for, however few buckets it holds so far.
          scales: { x: { time: true, range: () => range.map((t) => t.getTime() / 1000) } },
          legend: { live: false },
          series: [
            {},
            { label: "mean", stroke: "#1f5fbf", width: 2 },
            { label: "min", stroke: "#7a9cd0", width: 1 },
            { label: "max", stroke: "#7a9cd0", width: 1 },
          ],
          bands: [{ series: [3, 2], fill: "rgba(31, 95, 191, 0.15)" }],
        },
        data,
        holder,
      );
      const resize = () => plot.setSize({ width: Math.max(260, holder.clientWidth), height: 180 });
      window.addEventListener("resize", resize);
      container.disposers.push(() => {
        window.removeEventListener("resize", resize);
        plot.destroy();
        holder.remove();
      });
    });
  }

  /**
   * A deployment's audit log, live: Server-Sent Events read through fetch (EventSource cannot
   * send the Authorization header), resumed with Last-Event-ID after a drop. `onEvents` gets
   * every batch that arrived together; `onEnd` runs once the deployment is deleted.
   */
  function followEvents(deploymentId, { tail, onEvents, onEnd }) {
    const control = new AbortController();
    cleanups.push(() => control.abort());
    let lastId = null;
    let retryMs = 2000;
    let ended = false;
    const decoder = new TextDecoder();

    async function connect() {
      const headers = authorization({ Accept: "text/event-stream" });
      if (lastId !== null) headers["Last-Event-ID"] = String(lastId);
      const query = lastId === null ? `?tail=${tail}` : "";
      const response = await fetch(`/deployments/${deploymentId}/events/stream${query}`, { headers, signal: control.signal });
      if (response.status === 404) {
        ended = true;
        onEnd();
        return;
      }
      if (!response.ok) throw await failure(response, "Live events");
      const reader = response.body.getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        const batch = [];
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const message = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let data = null;
          let type = null;
          for (const line of message.split("\n")) {
            if (line.startsWith("data: ")) data = line.slice(6);
            else if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("id: ")) lastId = Number(line.slice(4));
            else if (line.startsWith("retry: ")) retryMs = Number(line.slice(7)) || retryMs;
          }
          if (type === "end") {
            // The server says why it ends the stream: a revoked or expired key is not retried.
            const end = JSON.parse(data);
            if (end.reason === "key_invalid") {
              ended = true;
              showError(new Error(`Live events stopped: ${end.detail}`));
            }
          } else if (data !== null) batch.push(JSON.parse(data));
        }
        if (batch.length) {
          body.dataset.lastEventId = String(lastId);
          onEvents(batch);
          if (batch[batch.length - 1].event_type === "DEPLOYMENT_DELETED") {
            ended = true;
            onEnd();
            control.abort();
            return;
          }
        }
      }
    }

    (async () => {
      while (!ended && !control.signal.aborted) {
        try {
          await connect();
        } catch (error) {
          if (control.signal.aborted) return;
          showError(error);
        }
        if (ended || control.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    })();
  }

  // ---- the fleet page ------------------------------------------------------------------------

  async function fleetPage() {
    document.title = "Fleet · netorch";
    const params = new URLSearchParams(location.search);
    const skip = Math.max(0, Number(params.get("skip")) || 0);
    const rows = h("tbody");
    const pager = h("nav", { class: "pager", "aria-label": "Deployment pages" });
    main.replaceChildren(
      h("h1", {}, "Fleet"),
      createForm(),
      h(
        "section",
        { "aria-labelledby": "deployments-title" },
        h("h2", { id: "deployments-title" }, "Deployments"),
        h(
          "div",
          { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
          h(
            "table",
            { class: "deployments" },
            h(
              "thead",
              {},
              h("tr", {}, ["Name", "Status", "Alerts", "Nodes by state", "Progress", "Failed", "Created"].map((t) => h("th", { scope: "col" }, t))),
            ),
            rows,
          ),
        ),
        pager,
      ),
    );

    async function load() {
      // One more than a page tells whether a next page exists.
      const list = await api(`/deployments?skip=${skip}&limit=${FLEET_PAGE + 1}`);
      const shown = list.slice(0, FLEET_PAGE);
      const firing = await alerts.fleetCounts(shown.map((d) => d.id));
      rows.replaceChildren(
        ...(shown.length
          ? shown.map((d) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `/ui/deployments/${d.id}` }, h("bdi", {}, inert(d.name)))),
                h("td", {}, statusBadge(d.status)),
                alerts.fleetCell(d.id, firing.get(d.id)),
                h("td", {}, stateBar(d.node_states, d.progress.total)),
                h("td", { class: "num" }, `${number(d.progress.finished)} / ${number(d.progress.total)}`),
                h("td", { class: "num" }, number(d.node_states.FAILED)),
                h("td", {}, showTime(d.created_at)),
              ),
            )
          : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, skip ? "No deployments on this page." : "No deployments yet: create one above."))]),
      );
      pager.replaceChildren(
        skip > 0 ? h("a", { href: `/ui?skip=${Math.max(0, skip - FLEET_PAGE)}` }, "← Newer") : "",
        h("span", { class: "muted" }, shown.length ? ` ${number(skip + 1)}–${number(skip + shown.length)} ` : " "),
        list.length > FLEET_PAGE ? h("a", { href: `/ui?skip=${skip + FLEET_PAGE}` }, "Older →") : "",
      );
    }
    await load();
    ready("fleet");
    every(3000, load);
  }

  function numberField(name, label, attrs) {
    const id = `f-${name}`;
    return h("span", { class: "field" }, h("label", { for: id }, label), h("input", { id, name, type: "number", inputmode: "numeric", ...attrs }));
  }

  function createForm() {
    if (!may("change")) {
      return h("p", { class: "muted" }, caller ? `Your role (${caller.role}) may not create deployments.` : "");
    }
    const form = h(
      "form",
      { class: "create", "aria-labelledby": "create-title" },
      h("h2", { id: "create-title" }, "New deployment"),
      h("span", { class: "field" }, h("label", { for: "f-name" }, "Name"), h("input", { id: "f-name", name: "name", required: true, maxlength: 255 })),
      h("span", { class: "field wide" }, h("label", { for: "f-description" }, "Description"), h("input", { id: "f-description", name: "description", maxlength: 1000 })),
      numberField("target_node_count", "Nodes", { required: true, min: 1, step: 1, value: 10 }),
      h(
        "details",
        {},
        h("summary", {}, "Rollout options"),
        numberField("max_in_flight", "Most nodes in a phase at once", { min: 1, step: 1 }),
        numberField("max_failure_percent", "Pause past this % failed", { min: 0, max: 100, step: "any" }),
        numberField("max_retries", "Automatic retries per node", { min: 0, max: 100, step: 1 }),
        numberField("phase_timeout_seconds", "Phase timeout (s)", { min: 1, step: 1 }),
      ),
      h("button", { type: "submit" }, "Create deployment"),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const data = new FormData(form);
      const json = { name: data.get("name"), target_node_count: Number(data.get("target_node_count")) };
      if (data.get("description")) json.description = data.get("description");
      for (const key of ["max_in_flight", "max_failure_percent", "max_retries", "phase_timeout_seconds"]) {
        if (data.get(key) !== "") json[key] = Number(data.get(key));
      }
      attempt(async () => {
        const created = await api("/deployments", { method: "POST", json });
        location.assign(`/ui/deployments/${created.id}`);
      });
    });
    return form;
  }

  // ---- the deployment page ---------------------------------------------------------------------

  /**
   * A deployment that is gone: when, by whom, and its history (the audit log outlives it);
   * "not found" when it never existed (an empty log).
   */
  async function deletedPage(id) {
    const events = [];
    let after = null;
    do {
      const page = await api(`/deployments/${id}/events?limit=1000${after === null ? "" : `&after=${after}`}`);
      events.push(...page.events);
      after = page.next_after;
    } while (after !== null && events.length < 10000);
    const crumbs = h("p", { class: "crumbs" }, h("a", { href: "/ui" }, "Fleet"), " / ", `deployment ${id}`);
    if (!events.length) {
      document.title = "Not found · netorch";
      main.replaceChildren(crumbs, h("h1", {}, "Not found"), h("p", {}, `There is no deployment ${id}, and there never was one.`), h("p", {}, h("a", { href: "/ui" }, "Back to the fleet")));
      ready("not-found");
      return;
    }
    const created = events.find((e) => e.event_type === "DEPLOYMENT_CREATED");
    const gone = events.findLast((e) => e.event_type === "DEPLOYMENT_DELETED");
    const name = created && created.metadata && created.metadata.name;
    const by = gone && gone.metadata && gone.metadata.actor;
    document.title = `${inert(name || `Deployment ${id}`)} (deleted) · netorch`;
    main.replaceChildren(
      crumbs,
      h("h1", {}, h("bdi", {}, inert(name || `Deployment ${id}`))),
      h(
        "p",
        { class: "notice", role: "status" },
        gone
          ? `This deployment was deleted on ${showTime(gone.created_at)}${by ? ` by ${inert(by)}` : ""}. Its nodes and telemetry went with it; its history stays.`
          : "This deployment is being deleted.",
      ),
      h("h2", {}, "History"),
      h(
        "table",
        {},
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "What"))),
        h(
          "tbody",
          {},
          ...events
            .slice()
            .reverse()
            .map((e) => h("tr", {}, h("td", {}, showTime(e.created_at)), h("td", {}, e.event_type), h("td", {}, h("bdi", {}, inert(e.message))))),
        ),
      ),
      h("p", {}, h("a", { href: "/ui" }, "Back to the fleet")),
    );
    ready("deployment-deleted");
  }

  async function deploymentPage(id) {
    try {
      await api(`/deployments/${id}`);
    } catch (error) {
      if (error.status === 404) return deletedPage(id);
      throw error;
    }
    const params = new URLSearchParams(location.search);
    let filter = params.get("state") || "";
    let skip = Math.max(0, Number(params.get("skip")) || 0);
    let rangeSeconds = Number(params.get("range")) || 3600;
    let deleted = false;

    const summary = h("section", { class: "summary", "aria-label": "Rollout" });
    const actions = h("section", { class: "actions", "aria-label": "Actions" });
    const nodeRows = h("tbody");
    const nodePager = h("nav", { class: "pager", "aria-label": "Node pages" });
    const charts = h("div", { class: "charts" });
    const reportBox = h("div", { class: "report" });
    const eventList = h("ol", { class: "events", reversed: true, tabindex: 0, "aria-labelledby": "events-title" });
    const title = h("h1", {}, `Deployment ${id}`);
    const description = h("p", { class: "muted" });
    const deletedNote = h("p", { class: "notice", role: "status" });
    const alertPanel = alerts.deploymentAlerts(id, { onNodesChange: () => attempt(loadNodes) });

    const stateOptions = [["All states", ""], ...NODE_STATES.map((s) => [s, s])];
    main.replaceChildren(
      h("p", { class: "crumbs" }, h("a", { href: "/ui" }, "Fleet"), " / ", `deployment ${id}`),
      title,
      description,
      deletedNote,
      summary,
      actions,
      alertPanel.section,
      h(
        "section",
        { "aria-labelledby": "telemetry-title" },
        h("h2", { id: "telemetry-title" }, "Fleet telemetry"),
        h(
          "div",
          { class: "controls" },
          rangeSelect(rangeSeconds, (seconds) => {
            rangeSeconds = seconds;
            remember();
            attempt(loadCharts);
          }),
        ),
        charts,
      ),
      h("section", { "aria-labelledby": "report-title" }, h("h2", { id: "report-title" }, "Bottlenecks"), reportForm(), reportBox),
      h(
        "section",
        { "aria-labelledby": "nodes-title" },
        h("h2", { id: "nodes-title" }, "Nodes"),
        h(
          "div",
          { class: "controls" },
          select("node-filter", "State", stateOptions, filter, (e) => {
            filter = e.target.value;
            skip = 0;
            remember();
            attempt(loadNodes);
          }),
        ),
        h(
          "div",
          { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
          h(
            "table",
            { class: "nodes" },
            h("thead", {}, h("tr", {}, ["Node", "State", "Attempt", "Failure", "Since", ""].map((t) => h("th", { scope: "col" }, t)))),
            nodeRows,
          ),
        ),
        nodePager,
      ),
      h("section", { "aria-labelledby": "events-title" }, h("h2", { id: "events-title" }, "Events (live)"), eventList),
    );

    function remember() {
      const q = new URLSearchParams();
      if (filter) q.set("state", filter);
      if (skip) q.set("skip", String(skip));
      if (rangeSeconds !== 3600) q.set("range", String(rangeSeconds));
      history.replaceState(null, "", `/ui/deployments/${id}${q.toString() ? "?" + q : ""}`);
    }

    async function loadDeployment() {
      if (deleted) return;
      const d = await api(`/deployments/${id}`);
      document.title = `${inert(d.name)} · netorch`;
      title.replaceChildren(h("bdi", {}, inert(d.name)));
      description.replaceChildren(h("bdi", {}, inert(d.description)));
      const total = d.progress.total;
      keepFocus(summary, () => summary.replaceChildren(
        h(
          "p",
          {},
          statusBadge(d.status),
          d.paused_at ? h("span", { class: "muted" }, ` paused since ${showTime(d.paused_at)}`) : "",
          h("span", { class: "muted" }, ` · created ${showTime(d.created_at)}`),
        ),
        h(
          "p",
          { class: "progress-line" },
          h("label", { for: "progress" }, "Finished"),
          h("progress", { id: "progress", max: Math.max(1, total), value: d.progress.finished }),
          h("span", { id: "progress-text" }, `${number(d.progress.finished)} of ${number(total)} (${percent(d.progress.finished, total).toFixed(1)}%)`),
        ),
        stateBar(d.node_states, d.current_node_count),
        h(
          "ul",
          { class: "counts" },
          NODE_STATES.map((s) =>
            h(
              "li",
              {},
              h("a", { href: `?state=${s}`, onclick: (e) => chooseState(e, s), "data-state": s }, h("span", { class: `dot s-${s}` }), `${s} `, h("strong", {}, number(d.node_states[s]))),
            ),
          ),
        ),
      ));
      drawActions(d);
    }

    function chooseState(event, state) {
      event.preventDefault();
      filter = state;
      skip = 0;
      document.getElementById("node-filter").value = state;
      remember();
      attempt(loadNodes);
    }

    function drawActions(d) {
      const items = [];
      if (may("change")) {
        items.push(
          d.paused_at
            ? h("button", { type: "button", onclick: () => act(() => api(`/deployments/${id}/resume`, { method: "POST" })) }, "Resume rollout")
            : h("button", { type: "button", onclick: () => act(() => api(`/deployments/${id}/pause`, { method: "POST" })) }, "Pause rollout"),
        );
        const scale = h(
          "form",
          { class: "inline" },
          h("label", { for: "scale-count" }, "Node count"),
          h("input", { id: "scale-count", type: "number", min: 1, step: 1, required: true, value: d.target_node_count }),
          h("button", { type: "submit" }, "Scale"),
        );
        scale.addEventListener("submit", (event) => {
          event.preventDefault();
          const count = Number(document.getElementById("scale-count").value);
          act(() => api(`/deployments/${id}`, { method: "PATCH", json: { target_node_count: count } }));
        });
        items.push(scale);
      }
      if (may("delete")) {
        items.push(
          h(
            "button",
            {
              type: "button",
              class: "danger",
              onclick: () => {
                if (!confirm(`Delete deployment "${inert(d.name)}" with its ${number(d.current_node_count)} nodes, their telemetry and events?`)) return;
                attempt(async () => {
                  await api(`/deployments/${id}`, { method: "DELETE" });
                  location.assign("/ui");
                });
              },
            },
            "Delete deployment…",
          ),
        );
      }
      if (!items.length && caller) items.push(h("span", { class: "muted" }, `Your role (${caller.role}) may only look.`));
      // A live refresh never takes the node count from under the user typing it.
      if (actions.querySelector("input:focus")) return;
      keepFocus(actions, () => actions.replaceChildren(...items));
    }

    /** Counts, progress, actions and the node page: what changes as the rollout moves. */
    const loadRollout = () => Promise.all([loadDeployment(), loadNodes()]);

    function act(work) {
      return attempt(async () => {
        await work();
        await loadRollout();
      });
    }

    async function loadNodes() {
      if (deleted) return;
      const q = new URLSearchParams({ skip: String(skip), limit: String(NODE_PAGE) });
      if (filter) q.set("state", filter);
      const page = await api(`/deployments/${id}/nodes?${q}`);
      keepFocus(nodeRows, () => nodeRows.replaceChildren(
        ...(page.nodes.length
          ? page.nodes.map((n) =>
              h(
                "tr",
                {},
                h(
                  "td",
                  {},
                  h("a", { href: `/ui/deployments/${id}/nodes/${n.node_id}` }, n.node_id),
                  alertPanel.alerting(n.node_id) ? [" ", h("span", { class: "sev sev-alerting", "data-alerting": n.node_id }, "alerting")] : "",
                ),
                h("td", {}, h("span", { class: `dot s-${n.state}` }), n.state),
                h("td", { class: "num" }, n.attempt),
                h("td", {}, n.failure_reason || ""),
                h("td", {}, showTime(n.state_changed_at)),
                h(
                  "td",
                  {},
                  n.state === "FAILED" && may("change")
                    ? h(
                        "button",
                        { type: "button", onclick: () => act(() => api(`/deployments/${id}/nodes/${n.id}/retry`, { method: "POST" })), "aria-label": `Retry ${n.node_id}` },
                        "Retry",
                      )
                    : "",
                ),
              ),
            )
          : [h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No nodes match."))]),
      ));
      const last = skip + page.nodes.length;
      const pageLink = (to, text) =>
        h(
          "button",
          {
            type: "button",
            class: "link",
            onclick: () => {
              skip = to;
              remember();
              attempt(loadNodes);
            },
          },
          text,
        );
      nodePager.replaceChildren(
        skip > 0 ? pageLink(Math.max(0, skip - NODE_PAGE), "← Previous") : "",
        h("span", { class: "muted" }, page.total ? ` ${number(skip + 1)}–${number(last)} of ${number(page.total)} ` : " "),
        last < page.total ? pageLink(skip + NODE_PAGE, "Next →") : "",
      );
    }

    async function loadCharts() {
      if (deleted) return;
      const end = new Date();
      const start = new Date(end.getTime() - rangeSeconds * 1000);
      const q = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
      const series = await api(`/deployments/${id}/telemetry/series?${q}`);
      drawCharts(charts, series.buckets, [start, end], "No telemetry in this range yet: nodes report once they are RUNNING.");
    }

    function reportForm() {
      const form = h(
        "form",
        { class: "controls" },
        select("method", "Method", METHODS.map((m) => [m, m]), METHODS[0]),
        h("span", { class: "field" }, h("label", { for: "window" }, "Window (minutes)"), h("input", { id: "window", type: "number", min: 1, max: 60, value: 10, required: true })),
        h("button", { type: "submit" }, "Find bottlenecks"),
      );
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        attempt(loadReport);
      });
      return form;
    }

    async function loadReport() {
      const method = document.getElementById("method").value;
      const windowMinutes = document.getElementById("window").value;
      reportBox.replaceChildren(h("p", { class: "muted" }, "Analysing…"));
      try {
        const r = await api(`/deployments/${id}/bottlenecks?method=${encodeURIComponent(method)}&analysis_window_minutes=${encodeURIComponent(windowMinutes)}`);
        reportBox.replaceChildren(
          h(
            "p",
            { role: "status" },
            `${number(r.total_bottlenecks)} bottleneck${r.total_bottlenecks === 1 ? "" : "s"} among ${number(r.nodes_analyzed)} nodes (${number(r.samples_analyzed)} samples, last ${r.analysis_window_minutes} min, ${r.method}, threshold ${r.threshold}).`,
          ),
          r.bottlenecks.length
            ? h(
                "div",
                { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
                h(
                  "table",
                  {},
                  h("thead", {}, h("tr", {}, ["Node", "Score", "Over threshold", "Latency (ms)", "Throughput (Gb/s)", "Error rate (%)", "Samples"].map((t) => h("th", { scope: "col" }, t)))),
                  h(
                    "tbody",
                    {},
                    r.bottlenecks.map((b) =>
                      h(
                        "tr",
                        {},
                        h("td", {}, h("a", { href: `/ui/deployments/${id}/nodes/${b.node_identifier}` }, b.node_identifier)),
                        h("td", { class: "num" }, b.deviation_score.toFixed(2)),
                        h("td", {}, b.reasons.join(", ")),
                        h("td", { class: "num" }, b.latency_ms.toFixed(2)),
                        h("td", { class: "num" }, b.throughput_gbps.toFixed(3)),
                        h("td", { class: "num" }, b.error_rate.toFixed(3)),
                        h("td", { class: "num" }, number(b.sample_count)),
                      ),
                    ),
                  ),
                ),
              )
            : "",
        );
      } catch (error) {
        reportBox.replaceChildren();
        throw error;
      }
    }

    function onEvents(batch) {
      // Only the newest are drawn: a rollout of 100,000 nodes sends hundreds of thousands.
      const fresh = batch.slice(-EVENTS_KEPT).reverse();
      const items = fresh.map((e) =>
        h(
          "li",
          {},
          h("time", { datetime: e.created_at }, showTime(e.created_at).slice(11, 19)),
          " ",
          h("span", { class: "etype" }, e.event_type),
          " ",
          h("bdi", {}, inert(e.message)),
        ),
      );
      eventList.prepend(...items);
      while (eventList.childElementCount > EVENTS_KEPT) eventList.lastElementChild.remove();
      body.dataset.eventsReceived = String(Number(body.dataset.eventsReceived || 0) + batch.length);
      refresh();
      if (batch.some(touchesAlerts)) refreshAlerts();
    }

    const refresh = throttle(loadRollout, 1000);
    /** Alerts change with their events; a pending one (which has none) shows within 10 s. */
    const loadAlerts = () => (deleted ? null : alertPanel.load());
    const refreshAlerts = throttle(loadAlerts, 1000);

    await Promise.all([loadRollout(), loadAlerts()]);
    ready("deployment");
    attempt(loadCharts);
    every(15000, loadCharts);
    every(10000, loadAlerts);
    followEvents(id, {
      tail: 50,
      onEvents,
      onEnd: () => {
        deleted = true;
        deletedNote.textContent = "This deployment has been deleted.";
        actions.replaceChildren();
      },
    });
  }

  // ---- the node page -----------------------------------------------------------------------------

  async function nodePage(deploymentId, nodeRef) {
    const params = new URLSearchParams(location.search);
    let rangeSeconds = Number(params.get("range")) || 3600;
    const title = h("h1", {}, nodeRef);
    const facts = h("dl", { class: "facts" });
    const actions = h("div", { class: "actions" });
    const charts = h("div", { class: "charts" });
    const history = h("tbody");
    main.replaceChildren(
      h("p", { class: "crumbs" }, h("a", { href: "/ui" }, "Fleet"), " / ", h("a", { href: `/ui/deployments/${deploymentId}` }, `deployment ${deploymentId}`), " / ", nodeRef),
      title,
      facts,
      actions,
      h(
        "section",
        { "aria-labelledby": "telemetry-title" },
        h("h2", { id: "telemetry-title" }, "Telemetry"),
        h(
          "div",
          { class: "controls" },
          rangeSelect(rangeSeconds, (seconds) => {
            rangeSeconds = seconds;
            window.history.replaceState(null, "", `?range=${rangeSeconds}`);
            attempt(loadCharts);
          }),
        ),
        charts,
      ),
      h(
        "section",
        { "aria-labelledby": "history-title" },
        h("h2", { id: "history-title" }, "State history"),
        h(
          "div",
          { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
          h("table", { class: "history" }, h("thead", {}, h("tr", {}, ["Time", "Event", "What happened"].map((t) => h("th", { scope: "col" }, t)))), history),
        ),
      ),
    );

    async function loadNode() {
      const n = await api(`/deployments/${deploymentId}/nodes/${encodeURIComponent(nodeRef)}`);
      document.title = `${n.node_id} · netorch`;
      title.textContent = n.node_id;
      const fact = (term, value) => [h("dt", {}, term), h("dd", {}, value === null || value === undefined || value === "" ? "—" : value)];
      facts.replaceChildren(
        ...fact("State", h("span", {}, h("span", { class: `dot s-${n.state}` }), n.state)),
        ...fact("Since", showTime(n.state_changed_at)),
        ...fact("Attempt", n.attempt),
        ...fact("Failure reason", n.failure_reason),
        ...fact("Automatic retry at", n.retry_at ? showTime(n.retry_at) : null),
        ...fact("Hostname", n.hostname),
        ...fact("IP address", n.ip_address),
      );
      actions.replaceChildren(
        n.state === "FAILED" && may("change")
          ? h(
              "button",
              {
                type: "button",
                onclick: () =>
                  attempt(async () => {
                    await api(`/deployments/${deploymentId}/nodes/${n.id}/retry`, { method: "POST" });
                    await loadNodeAndHistory();
                  }),
              },
              "Retry this node",
            )
          : "",
      );
      return n;
    }

    const loadNodeAndHistory = () => Promise.all([loadNode(), loadHistory()]);

    async function loadHistory() {
      const list = await api(`/deployments/${deploymentId}/events?node_id=${encodeURIComponent(nodeRef)}&limit=1000`);
      history.replaceChildren(
        ...list.events
          .slice()
          .reverse()
          .map((e) => h("tr", {}, h("td", {}, showTime(e.created_at)), h("td", {}, e.event_type), h("td", {}, e.message))),
      );
    }

    async function loadCharts() {
      const end = new Date();
      const start = new Date(end.getTime() - rangeSeconds * 1000);
      const q = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
      const series = await api(`/deployments/${deploymentId}/nodes/${encodeURIComponent(nodeRef)}/telemetry/series?${q}`);
      drawCharts(charts, series.buckets, [start, end], "No telemetry in this range: a node reports once it is RUNNING.");
    }

    await loadNodeAndHistory();
    ready("node");
    attempt(loadCharts);
    every(3000, loadNodeAndHistory);
    every(15000, loadCharts);
  }

  // ---- routing -------------------------------------------------------------------------------------

  async function start() {
    while (cleanups.length) cleanups.pop()();
    delete body.dataset.ready;
    const refused = await loadCaller();
    if (refused) {
      main.replaceChildren(h("h1", {}, "API token needed"), h("p", { class: "notice" }, refused));
      tokenInput.focus();
      return;
    }
    const path = location.pathname.replace(/\/+$/, "");
    let m;
    let page = null;
    if (path === "/ui") page = fleetPage;
    else if ((m = path.match(/^\/ui\/deployments\/(\d+)$/))) page = () => deploymentPage(Number(m[1]));
    else if ((m = path.match(/^\/ui\/deployments\/(\d+)\/nodes\/([^/]+)$/))) page = () => nodePage(Number(m[1]), decodeURIComponent(m[2]));
    if (!page) {
      document.title = "Not found · netorch";
      main.replaceChildren(h("h1", {}, "Not found"), h("p", {}, `Nothing of the dashboard is at ${location.pathname}.`), h("p", {}, h("a", { href: "/ui" }, "Back to the fleet")));
      ready("not-found");
      return;
    }
    try {
      await page();
    } catch (error) {
      main.replaceChildren(h("h1", {}, "Could not load this page"), h("p", {}, error.message), h("p", {}, h("a", { href: "/ui" }, "Back to the fleet")));
      throw error;
    }
  }

  // The fleet's health on every page, kept up to date whatever the page (no token needed).
  watchHealth(document.getElementById("health"));
  attempt(start);
})();
