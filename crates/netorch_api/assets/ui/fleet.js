// The dashboard's fleet page (issue 29, point 4): the fleet's totals (GET /fleet), the
// deployments searched, filtered and sorted where they are stored (GET /deployments?name=
// &status=&sort=), when it was last read, and the form that creates a deployment. The page
// around it (app.js) lends its helpers.
"use strict";

/** Deployments per page of the list. */
const FLEET_PAGE = 20;
/** The statuses and the list's orders as the server's enums name them, through the shell. */
const STATUSES = document.body.dataset.statuses.split(" ");
const NODE_STATES = document.body.dataset.nodeStates.split(" ");
/** The orders as a person reads them (a new one shows by its name until it has words). */
const SORT_WORDS = { newest: "Newest first", oldest: "Oldest first", name: "Name", most_failed: "Most failed nodes" };
const SORTS = document.body.dataset.sorts.split(" ").map((s) => [s, SORT_WORDS[s] || s]);
const COLUMNS = ["Name", "Status", "Alerts", "Nodes by state", "Progress", "Failed", "Created"];

/**
 * The fleet page, drawn with the page's helpers: `h`, `api`, `attempt`, `may`, `caller()`,
 * `showTime`, `inert`, `number`, `statusBadge`, `stateBar`, `select`, `every`, `ready`,
 * `cells` (a row's cells labelled by their column, for the narrow layout), `updated` (the
 * "last updated" line), `alerts` (the alert views), `main`.
 */
export function fleetPage(ui) {
  const { h, api, attempt, may, showTime, inert, number, statusBadge, stateBar, select, every, ready, cells, updated, alerts, main } = ui;

  return async function page() {
    document.title = "Fleet · netorch";
    const params = new URLSearchParams(location.search);
    let skip = Math.max(0, Number(params.get("skip")) || 0);
    let name = params.get("name") || "";
    let status = STATUSES.includes(params.get("status")) ? params.get("status") : "";
    let sort = SORTS.some(([s]) => s === params.get("sort")) ? params.get("sort") : "newest";

    const totals = h("section", { class: "totals", "aria-label": "Fleet totals" });
    const stamp = updated();
    const rows = h("tbody");
    const pager = h("nav", { class: "pager", "aria-label": "Deployment pages" });
    const search = h("input", { id: "fleet-name", type: "search", value: name, maxlength: 255, placeholder: "part of a name" });
    const controls = h(
      "form",
      { class: "controls", role: "search", "aria-label": "Find deployments" },
      h("span", { class: "field" }, h("label", { for: "fleet-name" }, "Name"), search),
      select("fleet-status", "Status", [["Any status", ""], ...STATUSES.map((s) => [s, s])], status, (e) => {
        status = e.target.value;
        again();
      }),
      select("fleet-sort", "Sort", SORTS.map(([value, text]) => [text, value]), sort, (e) => {
        sort = e.target.value;
        again();
      }),
      h("button", { type: "submit" }, "Search"),
    );
    controls.addEventListener("submit", (event) => {
      event.preventDefault();
      name = search.value.trim();
      again();
    });
    main.replaceChildren(
      h("h1", {}, "Fleet"),
      totals,
      stamp.element,
      createForm(),
      h(
        "section",
        { "aria-labelledby": "deployments-title" },
        h("h2", { id: "deployments-title" }, "Deployments"),
        controls,
        h(
          "div",
          { class: "scroll", tabindex: 0, role: "region", "aria-label": "Scrollable table" },
          h("table", { class: "deployments cards" }, h("thead", {}, h("tr", {}, COLUMNS.map((t) => h("th", { scope: "col" }, t)))), rows),
        ),
        pager,
      ),
    );

    /** The list's query: what is searched, and the page. */
    function query(from) {
      const q = new URLSearchParams();
      if (name) q.set("name", name);
      if (status) q.set("status", status);
      if (sort !== "newest") q.set("sort", sort);
      if (from) q.set("skip", String(from));
      return q;
    }

    function again() {
      skip = 0;
      const q = query(0).toString();
      history.replaceState(null, "", `/ui${q ? "?" + q : ""}`);
      attempt(load);
    }

    const link = (to, text) => {
      const q = query(to).toString();
      return h("a", { href: `/ui${q ? "?" + q : ""}` }, text);
    };

    function drawTotals(fleet) {
      const d = fleet.deployments;
      const n = fleet.nodes;
      const a = fleet.alerts;
      const part = (count, text, cls) => h("li", { class: cls }, h("strong", {}, number(count)), ` ${text}`);
      totals.replaceChildren(
        h(
          "ul",
          { class: "tally", "aria-label": "Deployments by status" },
          part(d.total, d.total === 1 ? "deployment" : "deployments"),
          ...STATUSES.map((s) => part(d.by_status[s], s.toLowerCase(), d.by_status[s] && s === "DEGRADED" ? "warn" : "")),
        ),
        h(
          "ul",
          { class: "tally", "aria-label": "Nodes by state" },
          part(n.total, n.total === 1 ? "node" : "nodes"),
          ...NODE_STATES.filter((s) => n.by_state[s])
            .map((s) => h("li", {}, h("span", { class: `dot s-${s}` }), h("strong", {}, number(n.by_state[s])), ` ${s.toLowerCase()}`)),
        ),
        h(
          "ul",
          { class: "tally", "aria-label": "Alerts" },
          part(a.firing, a.firing === 1 ? "alert firing" : "alerts firing", a.firing ? "warn" : ""),
          ...["critical", "warning", "info"]
            .filter((severity) => a.firing_by_severity[severity])
            .map((severity) => h("li", {}, h("span", { class: `sev sev-${severity}` }, `${number(a.firing_by_severity[severity])} ${severity}`))),
          a.pending ? part(a.pending, "pending") : "",
        ),
      );
    }

    let loads = 0;
    async function load() {
      // A refresh that started before a new search must not draw over its answer.
      const mine = ++loads;
      // One more than a page tells whether a next page exists.
      const [fleet, list] = await Promise.all([api("/fleet"), api(`/deployments?${query(skip)}&limit=${FLEET_PAGE + 1}`)]);
      const shown = list.slice(0, FLEET_PAGE);
      if (mine !== loads) return;
      drawTotals(fleet);
      const searching = name || status;
      rows.replaceChildren(
        ...(shown.length
          ? shown.map((d) =>
              h(
                "tr",
                {},
                cells(COLUMNS, [
                  // Names may repeat (as in the original API): the id tells two apart.
                  h("td", {}, h("a", { href: `/ui/deployments/${d.id}` }, h("bdi", {}, inert(d.name))), h("span", { class: "muted id" }, ` #${d.id}`)),
                  h("td", {}, statusBadge(d.status)),
                  alerts.fleetCell(d.id, d.alerts),
                  h("td", {}, stateBar(d.node_states, d.progress.total)),
                  h("td", { class: "num" }, `${number(d.progress.finished)} / ${number(d.progress.total)}`),
                  h("td", { class: "num" }, number(d.node_states.FAILED)),
                  h("td", {}, showTime(d.created_at)),
                ]),
              ),
            )
          : [
              h(
                "tr",
                {},
                h(
                  "td",
                  { colspan: COLUMNS.length, class: "muted" },
                  searching ? "No deployment matches." : skip ? "No deployments on this page." : "No deployments yet: create one above.",
                ),
              ),
            ]),
      );
      pager.replaceChildren(
        skip > 0 ? link(Math.max(0, skip - FLEET_PAGE), "← Previous") : "",
        h("span", { class: "muted" }, shown.length ? ` ${number(skip + 1)}–${number(skip + shown.length)} ` : " "),
        list.length > FLEET_PAGE ? link(skip + FLEET_PAGE, "Next →") : "",
      );
      stamp.mark();
    }
    await load();
    ready("fleet");
    every(3000, load);
  };

  function numberField(name, label, attrs) {
    const id = `f-${name}`;
    return h("span", { class: "field" }, h("label", { for: id }, label), h("input", { id, name, type: "number", inputmode: "numeric", ...attrs }));
  }

  function createForm() {
    if (!may("change")) {
      const caller = ui.caller();
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
}
