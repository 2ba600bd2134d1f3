// Self-healing on the deployment page: the policy, why it is stopped when it is, and the latest
// remediations (its NODE_REMEDIATED events), each with its node and the alert that caused it.
"use strict";

/** Remediations listed, the latest. */
const SHOWN = 5;
/** Remediation events read to find the latest (the log is read oldest first). */
const READ = 1000;

/**
 * The self-healing section and its loader, drawn with the page's helpers (`h`, `api`,
 * `showTime`, `inert`). `load(d)` redraws it for the deployment `d` as GET /deployments/{id}
 * answers it; a deployment without a policy and without remediations shows "off".
 */
export function healingSection({ h, api, showTime }, deploymentId) {
  const body = h("div", { class: "healing" });
  const element = h(
    "section",
    { "aria-labelledby": "healing-title" },
    h("h2", { id: "healing-title" }, "Self-healing"),
    body,
  );

  async function load(d) {
    const found = await api(`/deployments/${deploymentId}/events?event_type=NODE_REMEDIATED&limit=${READ}`);
    const latest = found.events.slice(-SHOWN).reverse();
    const count = found.events.length >= READ ? `${READ} or more` : String(found.events.length);
    const policy = d.remediation;
    const parts = [];
    parts.push(
      h(
        "p",
        { "data-healing": policy ? (d.remediation_stopped ? "stopped" : "on") : "off" },
        policy
          ? `On: a RUNNING node whose alert has fired for ${policy.after_seconds} s is re-provisioned, at most ${policy.max_concurrent} at once, none while more than ${policy.max_unhealthy_percent}% of the nodes are unhealthy.`
          : "Off: set remediation on the deployment (PATCH) to re-provision nodes whose alerts keep firing.",
      ),
    );
    if (d.remediation_stopped) {
      parts.push(
        h("p", { class: "notice", role: "status", "data-healing-stopped": "" }, `Stopped since ${showTime(d.remediation_stopped.since)}: ${d.remediation_stopped.reason}.`),
      );
    }
    if (latest.length) {
      parts.push(h("p", {}, `Nodes re-provisioned: ${count}. The latest:`));
      parts.push(
        h(
          "ul",
          { class: "remediations" },
          latest.map((e) =>
            h(
              "li",
              { "data-remediated": e.metadata.node_name },
              showTime(e.created_at),
              " ",
              h("a", { href: `/ui/deployments/${deploymentId}/nodes/${encodeURIComponent(e.metadata.node_name)}` }, e.metadata.node_name),
              ` re-provisioned (attempt ${e.metadata.attempt}) for alert `,
              h("code", {}, e.metadata.alert_fingerprint),
            ),
          ),
        ),
      );
    } else if (policy) {
      parts.push(h("p", { class: "muted" }, "No node remediated yet."));
    }
    body.replaceChildren(...parts);
  }

  return { element, load };
}
