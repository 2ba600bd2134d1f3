// The dashboard's alert views: how many alerts fire per deployment (the fleet page, from the
// counts the deployment listing carries), and a deployment's open alerts with acknowledge and
// silence (its page), drawn from the same API any client reads (GET /deployments/{id}/alerts, POST /alerts/{id}/ack, POST /silences). The page
// around them (app.js) lends its helpers and says when to reload: on every ALERT_ and SILENCE_
// event of the deployment's live stream.
"use strict";

/** Open alerts shown per deployment: more than this reads "100+". */
const SHOWN = 100;
/** How long a silence made from the dashboard lasts, the choices offered (hours). */
const SILENCE_HOURS = [1, 4, 24, 72];
const SEVERITY_ORDER = ["critical", "warning", "info"];

/** Whether an audit event says the deployment's alerts (or the silences over them) changed. */
export const touchesAlerts = (event) => /^(ALERT|SILENCE)_/.test(event.event_type);

/**
 * The alert views, drawn with the page's helpers: `h` (elements), `api` (a call with the
 * session's token), `attempt` (runs work, showing its error), `may` (what the caller's role
 * allows), `showTime`, `inert` (a text with invisible characters shown as code points),
 * `number`, `keepFocus`.
 */
export function alertViews({ h, api, attempt, may, showTime, inert, number, keepFocus }) {
  /** A deployment's alerts in `state`, newest first, and whether there are more. */
  async function alertsIn(id, state) {
    const page = await api(`/deployments/${id}/alerts?state=${state}&limit=${SHOWN}`);
    return { alerts: page.alerts, more: page.next_before !== null };
  }

  /** A deployment's open alerts: firing (and whether there are more), then pending. */
  async function openAlerts(id) {
    const [firing, pending] = await Promise.all([alertsIn(id, "firing"), alertsIn(id, "pending")]);
    return { firing: firing.alerts, pending: pending.alerts, more: firing.more };
  }

  /**
   * The fleet table's cell for a deployment: how many of its alerts fire, coloured by the worst,
   * from the counts the deployment listing carries (`alerts`).
   */
  function fleetCell(id, counts) {
    const count = counts.firing;
    if (!count) return h("td", { class: "muted", "data-firing": 0 }, "none");
    const worst = SEVERITY_ORDER.find((s) => counts.firing_by_severity[s] > 0);
    return h(
      "td",
      { "data-firing": count },
      h("a", { href: `/ui/deployments/${id}#alerts-title`, class: `sev sev-${worst}` }, `${number(count)} firing`),
    );
  }

  /**
   * The alerts section of deployment `id`'s page. `load()` reads and draws it; `alertingNodes`
   * (after a load) holds the names of the nodes with a firing alert, which the node table marks;
   * `onNodesChange` runs when that set changes.
   */
  function deploymentAlerts(id, { onNodesChange }) {
    const rows = h("tbody");
    const summary = h("p", { class: "muted", role: "status" });
    let hours = SILENCE_HOURS[0];
    let alertingNodes = new Set();
    const hoursSelect = h(
      "span",
      { class: "field" },
      h("label", { for: "silence-hours" }, "Silence for"),
      h(
        "select",
        { id: "silence-hours", onchange: (e) => (hours = Number(e.target.value)) },
        SILENCE_HOURS.map((n) => h("option", { value: n }, `${n} hour${n === 1 ? "" : "s"}`)),
      ),
    );
    const section = h(
      "section",
      { "aria-labelledby": "alerts-title", class: "alerts" },
      h("h2", { id: "alerts-title" }, "Alerts"),
      summary,
      may("respond") ? h("div", { class: "controls" }, hoursSelect) : "",
      h(
        "div",
        { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
        h(
          "table",
          { class: "alerts" },
          h("thead", {}, h("tr", {}, ["Severity", "Alert", "State", "Since", "Summary", "Response", ""].map((t) => h("th", { scope: "col" }, t)))),
          rows,
        ),
      ),
    );

    /** The label `name` = its value, as a silence's equality matcher. */
    const matcher = (a, name) => ({ name, value: a.labels[name], is_equal: true, is_regex: false });

    function acknowledge(a) {
      const comment = prompt(`Acknowledge ${what(a)}: what is being done about it?`);
      if (comment === null || !comment.trim()) return;
      act(() => api(`/alerts/${a.id}/ack`, { method: "POST", json: { comment: comment.trim() } }));
    }

    function unacknowledge(a) {
      const comment = prompt(`Take back the acknowledgement of ${what(a)}: why?`);
      if (comment === null || !comment.trim()) return;
      act(() => api(`/alerts/${a.id}/unack`, { method: "POST", json: { comment: comment.trim() } }));
    }

    function silence(a) {
      const comment = prompt(`Silence ${what(a)} for ${hours} hour${hours === 1 ? "" : "s"}: why?`);
      if (comment === null || !comment.trim()) return;
      // The alert's identity labels: this condition, and its next firings until the end.
      const names = ["alertname", "deployment", "rule", ...(a.labels.node ? ["node"] : [])];
      const endsAt = new Date(Date.now() + hours * 3600 * 1000).toISOString();
      act(() =>
        api("/silences", {
          method: "POST",
          json: { matchers: names.map((n) => matcher(a, n)), ends_at: endsAt, comment: comment.trim() },
        }),
      );
    }

    function act(work) {
      return attempt(async () => {
        await work();
        await load();
      });
    }

    /** What an alert is about, in words. */
    const what = (a) => `${a.alertname} on ${a.node_name || "the fleet"}`;

    function response(a) {
      const parts = [];
      if (a.acknowledgement) {
        const ack = a.acknowledgement;
        parts.push(h("span", { class: "ack" }, "acknowledged by ", h("bdi", {}, inert(ack.by)), ` ${showTime(ack.at)}: `, h("bdi", {}, inert(ack.comment))));
      }
      if (a.silenced) parts.push(h("span", { class: "silenced" }, `silenced (${a.silenced_by.map((s) => `#${s}`).join(", ")})`));
      return parts.length ? parts : h("span", { class: "muted" }, "none");
    }

    function buttons(a) {
      if (!may("respond")) return "";
      const label = (verb) => `${verb} ${what(a)}`;
      const out = [];
      if (a.state === "firing") {
        out.push(
          a.acknowledgement
            ? h("button", { type: "button", class: "link", onclick: () => unacknowledge(a), "aria-label": label("Unacknowledge") }, "Unacknowledge")
            : h("button", { type: "button", class: "link", onclick: () => acknowledge(a), "aria-label": label("Acknowledge") }, "Acknowledge…"),
        );
      }
      if (!a.silenced) out.push(h("button", { type: "button", class: "link", onclick: () => silence(a), "aria-label": label("Silence") }, "Silence…"));
      return out;
    }

    function row(a) {
      return h(
        "tr",
        { "data-alert": a.id, "data-state": a.state },
        h("td", {}, h("span", { class: `sev sev-${a.severity}` }, a.severity)),
        h(
          "td",
          {},
          a.alertname,
          " ",
          a.node_name ? h("a", { href: `/ui/deployments/${id}/nodes/${encodeURIComponent(a.node_name)}` }, a.node_name) : h("span", { class: "muted" }, "fleet"),
        ),
        h("td", {}, a.state),
        h("td", {}, showTime(a.starts_at || a.active_since)),
        h("td", {}, h("bdi", {}, inert(a.annotations.summary || ""))),
        h("td", {}, response(a)),
        h("td", {}, buttons(a)),
      );
    }

    async function load() {
      const found = await openAlerts(id);
      const open = [...found.firing, ...found.pending];
      const acknowledged = found.firing.filter((a) => a.acknowledgement).length;
      summary.textContent = open.length
        ? `${found.more ? `${number(found.firing.length)}+` : number(found.firing.length)} firing (${number(acknowledged)} acknowledged), ${number(found.pending.length)} pending.`
        : "No alert is firing or pending.";
      keepFocus(rows, () =>
        rows.replaceChildren(...(open.length ? open.map(row) : [h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Nothing to see: the rules are quiet."))])),
      );
      const nodes = new Set(found.firing.map((a) => a.node_name).filter(Boolean));
      const changed = nodes.size !== alertingNodes.size || [...nodes].some((n) => !alertingNodes.has(n));
      alertingNodes = nodes;
      if (changed) onNodesChange();
    }

    return {
      section,
      load,
      /** Whether node `name` has a firing alert, as of the last load. */
      alerting: (name) => alertingNodes.has(name),
    };
  }

  return { fleetCell, deploymentAlerts };
}
