// The node page's provisioner runs: what the node's external provisioner ran in each phase,
// newest first, with how it ended and the end of its output (GET .../nodes/{node}/runs). A node
// of the built-in simulator has none, and the section says so.
"use strict";

/**
 * The runs section and its loader, drawn with the page's helpers (`h`, `api`, `showTime`).
 * `load()` reads the runs again and redraws them.
 */
export function runsSection({ h, api, showTime }, deploymentId, nodeRef) {
  const list = h("div", { class: "runs" });
  const element = h(
    "section",
    { "aria-labelledby": "runs-title" },
    h("h2", { id: "runs-title" }, "Provisioner runs"),
    list,
  );

  function run(r) {
    const outcome = r.outcome === null ? "running" : r.outcome.replace("_", " ");
    const head = [
      h("strong", {}, r.phase),
      ` attempt ${r.attempt}: `,
      h("span", { class: `run-outcome o-${r.outcome === null ? "running" : r.outcome}` }, outcome),
      r.exit_code === null ? "" : ` (exit ${r.exit_code})`,
      ` · ${r.profile} on ${r.worker}`,
      r.starts > 1 ? ` · started ${r.starts} times (taken over)` : "",
      ` · ${showTime(r.started_at)}`,
      r.finished_at ? ` – ${showTime(r.finished_at)}` : "",
    ];
    const parts = [h("p", {}, ...head)];
    if (r.message) parts.push(h("p", { class: "run-message" }, r.message));
    for (const [name, text] of [["standard output", r.stdout], ["standard error", r.stderr]]) {
      if (text) parts.push(h("details", {}, h("summary", {}, name), h("pre", {}, text)));
    }
    return h("article", { class: "run" }, ...parts);
  }

  async function load() {
    const found = await api(`/deployments/${deploymentId}/nodes/${encodeURIComponent(nodeRef)}/runs`);
    list.replaceChildren(
      ...(found.runs.length
        ? found.runs.map(run)
        : [h("p", { class: "muted" }, "No runs: the built-in simulator runs no program, and an external provisioner has not started one for this node yet.")]),
    );
  }

  return { element, load };
}
