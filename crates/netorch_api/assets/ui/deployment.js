// The dashboard's deployment and node pages: a deployment's rollout live from its event stream,
// its alerts, charts, bottleneck report, nodes and log; a deleted one's history; a node's facts,
// charts and history. The page around them (app.js) lends its helpers.
"use strict";

import { touchesAlerts } from "/ui/assets/alerts.js";
import { METRICS, RANGES, chartRange } from "/ui/assets/charts.js";
import { healingSection } from "/ui/assets/healing.js";
import { runsSection } from "/ui/assets/runs.js";

/** Nodes per page of a deployment's node table. */
const NODE_PAGE = 50;
/** Events kept in the live log. */
const EVENTS_KEPT = 100;
/** The closed lists, as the server's enums name them, through the page's shell. */
const NODE_STATES = document.body.dataset.nodeStates.split(" ");
const METHODS = document.body.dataset.methods.split(" ");
/** A metric's name as a person reads it (`latency_ms` → "latency"). */
const metricWord = (key) => (METRICS.find((m) => m.key === key)?.word || key).toLowerCase();

/**
 * The pages, drawn with the page's helpers (see app.js, where `ui` is made): elements, API
 * calls, errors, timers, the live event stream, charts, and the alert views.
 */
export function deploymentPages(ui) {
  const {
    h, api, attempt, may, showTime, inert, number, percent, parseTime, statusBadge, stateBar, select, every, ready, cells, updated,
    alerts, main, body, keepFocus, throttle, followEvents, eventMessage, drawCharts, keepCharting, rangeSelect,
  } = ui;


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
            .map((e) => h("tr", {}, h("td", {}, showTime(e.created_at)), h("td", {}, e.event_type), h("td", {}, eventMessage(e, id, false)))),
        ),
      ),
      h("p", {}, h("a", { href: "/ui" }, "Back to the fleet")),
    );
    ready("deployment-deleted");
  }

  /** A page's telemetry: its heading, the range chosen (`onRange` gets a new one), its charts. */
  function telemetrySection(heading, seconds, charts, onRange) {
    return h(
      "section",
      { "aria-labelledby": "telemetry-title" },
      h("h2", { id: "telemetry-title" }, heading),
      h("div", { class: "controls" }, rangeSelect(seconds, onRange)),
      charts,
    );
  }

  /** The range a page's URL asks for (`?range=`), or 0: since creation. */
  function rangeFromUrl(params) {
    const asked = params.get("range");
    return RANGES.some(([, seconds]) => String(seconds) === asked) ? Number(asked) : 0;
  }

  async function deploymentPage(id) {
    let first;
    try {
      first = await api(`/deployments/${id}`);
    } catch (error) {
      if (error.status === 404) return deletedPage(id);
      throw error;
    }
    const params = new URLSearchParams(location.search);
    let filter = params.get("state") || "";
    let skip = Math.max(0, Number(params.get("skip")) || 0);
    let rangeSeconds = rangeFromUrl(params);
    let deleted = false;
    const created = new Date(parseTime(first.created_at));
    const stamp = updated();

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
    const healing = healingSection(ui, id);

    const stateOptions = [["All states", ""], ...NODE_STATES.map((s) => [s, s])];
    // On a narrow screen each row is a card, its cells under these names, in the order of what
    // matters first (app.css): which node, its state, since when, its retry; then the rest.
    const NODE_COLUMNS = ["Node", "State", "Attempt", "Failure", "Since", ""];
    main.replaceChildren(
      h("p", { class: "crumbs" }, h("a", { href: "/ui" }, "Fleet"), " / ", `deployment ${id}`),
      title,
      description,
      deletedNote,
      summary,
      stamp.element,
      actions,
      alertPanel.section,
      healing.element,
      telemetrySection("Fleet telemetry", rangeSeconds, charts, (seconds) => {
        rangeSeconds = seconds;
        remember();
        attempt(loadCharts);
      }),
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
            { class: "nodes cards" },
            h("thead", {}, h("tr", {}, NODE_COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
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
      if (rangeSeconds) q.set("range", String(rangeSeconds));
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
      await healing.load(d);
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
        // Pausing is offered while nodes are on their way; a finished rollout has none to hold.
        if (d.paused_at) {
          items.push(h("button", { type: "button", onclick: () => act(() => api(`/deployments/${id}/resume`, { method: "POST" })) }, "Resume rollout"));
        } else if (d.status === "PROGRESSING") {
          items.push(h("button", { type: "button", onclick: () => act(() => api(`/deployments/${id}/pause`, { method: "POST" })) }, "Pause rollout"));
        }
        if (d.node_states.FAILED > 0) {
          items.push(
            h(
              "button",
              { type: "button", onclick: () => retryAllFailed(d.node_states.FAILED) },
              `Retry all ${number(d.node_states.FAILED)} failed`,
            ),
          );
        }
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
      const caller = ui.caller();
      if (!items.length && caller) items.push(h("span", { class: "muted" }, `Your role (${caller.role}) may only look.`));
      // A live refresh never takes the node count from under the user typing it.
      if (actions.querySelector("input:focus")) return;
      keepFocus(actions, () => actions.replaceChildren(...items));
    }

    /** Counts, progress, actions and the node page: what changes as the rollout moves. */
    const loadRollout = async () => {
      await Promise.all([loadDeployment(), loadNodes()]);
      stamp.mark();
    };

    /**
     * Retries every failed node, as `netorch retry --all-failed` does: the failed nodes are
     * read page by page and retried four at a time; one that was retried meanwhile (409) is
     * not an error.
     */
    function retryAllFailed(count) {
      if (!confirm(`Retry all ${number(count)} failed nodes of this deployment?`)) return;
      act(async () => {
        const failed = [];
        for (let from = 0; ; from += 1000) {
          const page = await api(`/deployments/${id}/nodes?state=FAILED&skip=${from}&limit=1000`);
          failed.push(...page.nodes);
          if (page.nodes.length < 1000) break;
        }
        let next = 0;
        const worker = async () => {
          while (next < failed.length) {
            const n = failed[next++];
            try {
              await api(`/deployments/${id}/nodes/${n.id}/retry`, { method: "POST" });
            } catch (error) {
              if (error.status !== 409) throw error;
            }
          }
        };
        await Promise.all([worker(), worker(), worker(), worker()]);
      });
    }

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
                cells(NODE_COLUMNS, [
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
                ]),
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
      const [start, end] = chartRange(rangeSeconds, created);
      const q = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
      const series = await api(`/deployments/${id}/telemetry/series?${q}`);
      await drawCharts(charts, series.buckets, [start, end], rangeSeconds === 0, "No telemetry in this range yet: nodes report once they are RUNNING.");
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
                  h("thead", {}, h("tr", {}, ["Node", "Score", "Over threshold", ...METRICS.map((m) => `${m.word} (${m.unit})`), "Samples"].map((t) => h("th", { scope: "col" }, t)))),
                  h(
                    "tbody",
                    {},
                    r.bottlenecks.map((b) =>
                      h(
                        "tr",
                        {},
                        h("td", {}, h("a", { href: `/ui/deployments/${id}/nodes/${b.node_identifier}` }, b.node_identifier)),
                        h("td", { class: "num" }, b.deviation_score.toFixed(2)),
                        h("td", {}, b.reasons.map(metricWord).join(", ")),
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
          eventMessage(e, id),
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
    // The report is read on opening: the first thing an operator looks for.
    attempt(loadReport);
    attempt(loadCharts);
    keepCharting(created, loadCharts);
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
    let rangeSeconds = rangeFromUrl(params);
    let created = null;
    const title = h("h1", {}, nodeRef);
    const facts = h("dl", { class: "facts" });
    const actions = h("div", { class: "actions" });
    const charts = h("div", { class: "charts" });
    const history = h("tbody");
    const runs = runsSection(ui, deploymentId, nodeRef);
    main.replaceChildren(
      h("p", { class: "crumbs" }, h("a", { href: "/ui" }, "Fleet"), " / ", h("a", { href: `/ui/deployments/${deploymentId}` }, `deployment ${deploymentId}`), " / ", nodeRef),
      title,
      facts,
      actions,
      telemetrySection("Telemetry", rangeSeconds, charts, (seconds) => {
        rangeSeconds = seconds;
        window.history.replaceState(null, "", rangeSeconds ? `?range=${rangeSeconds}` : location.pathname);
        attempt(loadCharts);
      }),
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
      runs.element,
    );

    async function loadNode() {
      const n = await api(`/deployments/${deploymentId}/nodes/${encodeURIComponent(nodeRef)}`);
      document.title = `${n.node_id} · netorch`;
      created = new Date(parseTime(n.created_at));
      title.textContent = n.node_id;
      const fact = (term, value) => [h("dt", {}, term), h("dd", {}, value === null || value === undefined || value === "" ? "—" : value)];
      facts.replaceChildren(
        ...fact("State", h("span", {}, h("span", { class: `dot s-${n.state}` }), n.state)),
        ...fact("Since", showTime(n.state_changed_at)),
        ...fact("Attempt", n.attempt),
        ...fact("Failure reason", n.failure_reason),
        ...fact("Automatic retry at", n.retry_at ? showTime(n.retry_at) : null),
        ...fact("Remediations", n.remediated_at ? `${n.remediations}, the last ${showTime(n.remediated_at)}` : n.remediations),
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

    // The runs once the node is found: a node that is not there is one error, not two.
    const loadNodeAndHistory = () => Promise.all([loadNode().then(runs.load), loadHistory()]);

    async function loadHistory() {
      const list = await api(`/deployments/${deploymentId}/events?node_id=${encodeURIComponent(nodeRef)}&limit=1000`);
      history.replaceChildren(
        ...list.events
          .slice()
          .reverse()
          .map((e) => h("tr", {}, h("td", {}, showTime(e.created_at)), h("td", {}, e.event_type), h("td", {}, eventMessage(e, deploymentId, false)))),
      );
    }

    async function loadCharts() {
      const [start, end] = chartRange(rangeSeconds, created);
      const q = new URLSearchParams({ start_time: start.toISOString(), end_time: end.toISOString() });
      const series = await api(`/deployments/${deploymentId}/nodes/${encodeURIComponent(nodeRef)}/telemetry/series?${q}`);
      await drawCharts(charts, series.buckets, [start, end], rangeSeconds === 0, "No telemetry in this range: a node reports once it is RUNNING.");
    }

    await loadNodeAndHistory();
    ready("node");
    attempt(loadCharts);
    every(3000, loadNodeAndHistory);
    keepCharting(created, loadCharts);
  }

  return { deploymentPage, nodePage };
}
