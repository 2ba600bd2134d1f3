// netorch's dashboard: draws the page for the current path from the API, follows a deployment
// live through its event stream, and sends the API token kept in session storage. No framework
// and no build step: this file is served as written (see crates/netorch_api/src/ui.rs), a
// module that imports the alert views (alerts.js), the health line (health.js), the charts
// (charts.js), the fleet page (fleet.js) and the deployment and node pages (deployment.js),
// lending them its helpers.
"use strict";

import { alertViews } from "/ui/assets/alerts.js";
import { watchHealth } from "/ui/assets/health.js";
import { RANGES, chartRefreshMs, drawCharts as drawChartsInto } from "/ui/assets/charts.js";
import { fleetPage } from "/ui/assets/fleet.js";
import { deploymentPages } from "/ui/assets/deployment.js";

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
  const TOKEN_KEY = "netorch.token";
  const main = document.getElementById("main");
  const errorBox = document.getElementById("errors");
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

  /**
   * An event's sentence with the node it is about linked to the node's page (`link` false
   * for a deleted deployment, whose nodes are gone, and on the node's own page). Node events
   * name the node (`node-032`, also in `metadata.node_name`); events recorded before they did
   * say `Node 295`, its numeric id, which the node page takes as well.
   */
  function eventMessage(e, deploymentId, link = true) {
    const text = inert(e.message);
    const name = e.metadata && typeof e.metadata.node_name === "string" ? inert(e.metadata.node_name) : null;
    const mention = name && text.includes(name) ? name : e.node_id !== null && text.includes(`Node ${e.node_id}`) ? `Node ${e.node_id}` : null;
    if (!link || e.node_id === null || !mention) return h("bdi", {}, text);
    const at = text.indexOf(mention);
    // By id: a name can be given again to a later node (scaled down, then up).
    return h(
      "bdi",
      {},
      text.slice(0, at),
      h("a", { href: `/ui/deployments/${deploymentId}/nodes/${e.node_id}`, "data-node": e.node_id }, mention),
      text.slice(at + mention.length),
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

  /** The charts' time range: seconds back from now, 0 since creation; `onchange` gets the new one. */
  function rangeSelect(seconds, onchange) {
    return select("range", "Range", RANGES, seconds, (e) => onchange(Number(e.target.value)));
  }

  /** Draws `buckets` over `range` into `container` (see charts.js); removed with the page.
   * Resolves once drawn. */
  function drawCharts(container, buckets, range, fit, emptyText) {
    if (!container.disposers) {
      container.disposers = [];
      cleanups.push(() => container.disposers.splice(0).forEach((dispose) => dispose()));
    }
    return drawChartsInto({ h, container, buckets, range, fit, emptyText, disposers: container.disposers });
  }

  /** The charts of a page, redrawn every 3 s while what they chart is young, every 15 s after. */
  function keepCharting(created, load) {
    let timer = null;
    let stopped = false;
    const tick = () => {
      timer = setTimeout(async () => {
        if (!document.hidden) await attempt(load);
        // The page may have gone while it loaded: then no next round.
        if (!stopped) tick();
      }, chartRefreshMs(created));
    };
    tick();
    cleanups.push(() => {
      stopped = true;
      clearTimeout(timer);
    });
  }

  /** A table row's cells, each labelled by its column: the narrow layout shows the label. */
  function cells(columns, tds) {
    tds.forEach((td, i) => {
      if (columns[i]) td.dataset.label = columns[i];
    });
    return tds;
  }

  /** A "last updated" line: `mark()` after each successful read. */
  function updated() {
    // Not a live region: read every 3 s, it would be announced every 3 s.
    const element = h("p", { class: "updated muted" }, "");
    return {
      element,
      mark: () => {
        const now = new Date().toISOString();
        element.dataset.at = now;
        element.replaceChildren("Updated ", h("time", { datetime: now }, `${now.slice(11, 19)} UTC`));
      },
    };
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

  /** What the pages' modules borrow: one set of helpers, so that every page works alike. */
  const ui = {
    h, api, attempt, may, caller: () => caller, showTime, inert, number, percent, parseTime, statusBadge, stateBar, select, every, ready,
    cells, updated, alerts, main, body, keepFocus, throttle, followEvents, eventMessage, drawCharts, keepCharting, rangeSelect,
  };
  const showFleet = fleetPage(ui);
  const { deploymentPage, nodePage } = deploymentPages(ui);

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
    if (path === "/ui") page = showFleet;
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
