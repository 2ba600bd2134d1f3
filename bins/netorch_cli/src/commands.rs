//! The commands that are one call (or a few) and a print: deployments, nodes, the bottleneck
//! report, telemetry and alerts. Each takes its arguments, calls the API, and prints the answer
//! as a table or as the API's JSON.

use crate::client::{CallError, Client};
use crate::exit;
use crate::output::{self, Format, cell, items};
use netorch_domain::{Action, NodeState};
use serde_json::{Value, json};

/// One deployment, by id.
#[derive(Debug, clap::Args)]
pub struct One {
    /// The deployment's id.
    pub id: i64,
}

#[derive(Debug, clap::Args)]
pub struct Deploy {
    /// The deployment's name.
    pub name: String,
    /// How many nodes.
    #[arg(long)]
    pub nodes: u32,
    /// At most this many nodes provisioning or configuring at once.
    #[arg(long)]
    pub max_in_flight: Option<u32>,
    /// Pause the rollout once more than this percentage of its finished nodes failed.
    #[arg(long)]
    pub max_failure_percent: Option<f64>,
    /// Retry a failed node automatically up to this many times.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Fail a node whose phase takes longer than this many seconds.
    #[arg(long)]
    pub phase_timeout_seconds: Option<u32>,
    /// A description.
    #[arg(long)]
    pub description: Option<String>,
    /// Where its telemetry comes from: the simulator, or collectors that push it.
    #[arg(long, value_parser = ["simulated", "pushed"])]
    pub telemetry_origin: Option<String>,
    /// Follow the rollout until it finishes, as `netorch watch` does (and exit as it does).
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (`90s`, `10m`, `2h`).
    #[arg(long, requires = "wait", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
}

#[derive(Debug, clap::Args)]
pub struct List {
    /// At most this many (1..1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, clap::Args)]
pub struct Scale {
    /// The deployment's id.
    pub id: i64,
    /// Its new node count.
    pub nodes: u32,
}

#[derive(Debug, clap::Args)]
pub struct Retry {
    /// The deployment's id.
    pub id: i64,
    /// The nodes to retry, by name (`node-007`) or id.
    #[arg(required_unless_present = "all_failed")]
    pub nodes: Vec<String>,
    /// Retry every FAILED node of the deployment.
    #[arg(long, conflicts_with = "nodes")]
    pub all_failed: bool,
}

#[derive(Debug, clap::Args)]
pub struct Nodes {
    /// The deployment's id.
    pub id: i64,
    /// Only nodes in this state.
    #[arg(long, value_parser = node_state)]
    pub state: Option<NodeState>,
}

#[derive(Debug, clap::Args)]
pub struct Top {
    /// The deployment's id.
    pub id: i64,
    /// How bottlenecks are found: robust (median and MAD) or zscore.
    #[arg(long, value_parser = ["robust", "zscore"])]
    pub method: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct Telemetry {
    /// The deployment's id.
    pub id: i64,
    /// Only this node (name or id).
    #[arg(long)]
    pub node: Option<String>,
    /// Only samples newer than this (`90s`, `10m`, `2h`).
    #[arg(long, value_parser = parse_duration)]
    pub since: Option<std::time::Duration>,
    /// At most this many (1..1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, clap::Args)]
pub struct Alerts {
    /// Only firing alerts.
    #[arg(long)]
    pub firing: bool,
    /// Only this deployment's.
    #[arg(long)]
    pub deployment: Option<i64>,
    /// At most this many (1..1000).
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

#[derive(Debug, clap::Args)]
pub struct Ack {
    /// The alert: its id or fingerprint.
    pub alert: String,
    /// Why, for whoever looks next.
    #[arg(short, long)]
    pub message: String,
}

#[derive(Debug, clap::Args)]
pub struct Silence {
    /// The deployment whose alerts to silence.
    #[arg(long, required_unless_present = "matcher")]
    pub deployment: Option<i64>,
    /// Only these nodes (names; repeat the flag).
    #[arg(long, requires = "deployment")]
    pub node: Vec<String>,
    /// Any label matcher, as Alertmanager's amtool writes them: `severity=critical`,
    /// `rule!=latency`, `alertname=~Node.*`, `node!~node-00[1-3]` (repeat the flag; all must
    /// match).
    #[arg(long, value_parser = parse_matcher)]
    pub matcher: Vec<serde_json::Value>,
    /// For how long (`30m`, `2h`).
    #[arg(long = "for", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Why.
    #[arg(short, long)]
    pub message: String,
}

/// A label matcher as amtool writes it (`name=value`, `name!=value`, `name=~regex`,
/// `name!~regex`), as the API's silence takes it.
fn parse_matcher(text: &str) -> Result<serde_json::Value, String> {
    // The longest operator first: `!=` before `=`, `=~` before `=`.
    let at = text.find(['=', '!']).ok_or_else(|| {
        format!("not a matcher (name=value, name!=value, name=~re, name!~re): {text}")
    })?;
    let (name, rest) = text.split_at(at);
    let (is_equal, is_regex, value) = if let Some(v) = rest.strip_prefix("!~") {
        (false, true, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        (false, false, v)
    } else if let Some(v) = rest.strip_prefix("=~") {
        (true, true, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        (true, false, v)
    } else {
        return Err(format!("not a matcher: {text}"));
    };
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("a matcher names a label: {text}"));
    }
    // amtool's quotes around a value are not part of it.
    let value = value.trim().trim_matches('"');
    Ok(json!({"name": name, "value": value, "is_equal": is_equal, "is_regex": is_regex}))
}

/// A node state by its name, any case (`failed`, `FAILED`).
fn node_state(text: &str) -> Result<NodeState, String> {
    NodeState::ALL
        .into_iter()
        .find(|state| state.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            let names: Vec<&str> = NodeState::ALL.iter().map(|s| s.as_str()).collect();
            format!("not a node state: {}", names.join(", "))
        })
}

/// `90s`, `10m`, `2h`, `1d`, or seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) =
        text.split_at(text.find(|c: char| c.is_alphabetic()).unwrap_or(text.len()));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 2h"))?;
    let seconds = match unit {
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(format!("{text:?}: the unit is one of s, m, h, d")),
    };
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 2h"))
}

/// A deployment's row of `ls`.
fn deployment_row(d: &Value) -> Vec<String> {
    vec![
        cell(&d["id"]),
        cell(&d["name"]),
        cell(&d["status"]),
        format!(
            "{}/{}",
            cell(&d["progress"]["finished"]),
            cell(&d["progress"]["total"])
        ),
        cell(&d["node_states"]["RUNNING"]),
        cell(&d["node_states"]["FAILED"]),
        cell(&d["created_at"]),
    ]
}

const DEPLOYMENT_HEADERS: [&str; 7] = [
    "ID", "NAME", "STATUS", "FINISHED", "RUNNING", "FAILED", "CREATED",
];

/// Prints one deployment.
fn print_deployment(format: Format, d: &Value) {
    match format {
        Format::Json => output::json(d),
        Format::Table => {
            output::table(&DEPLOYMENT_HEADERS, &[deployment_row(d)]);
            let states: Vec<String> = NodeState::ALL
                .iter()
                .filter_map(|state| {
                    let n = d["node_states"][state.as_str()].as_u64()?;
                    (n > 0).then(|| format!("{} {n}", state.as_str()))
                })
                .collect();
            if !states.is_empty() {
                crate::outln!("nodes: {}", states.join(", "));
            }
        }
    }
}

pub fn deploy(client: &Client, format: Format, args: Deploy) -> Result<u8, CallError> {
    let mut body = json!({"name": args.name, "target_node_count": args.nodes});
    for (field, value) in [
        ("max_in_flight", args.max_in_flight.map(Value::from)),
        (
            "max_failure_percent",
            args.max_failure_percent.map(Value::from),
        ),
        ("max_retries", args.max_retries.map(Value::from)),
        (
            "phase_timeout_seconds",
            args.phase_timeout_seconds.map(Value::from),
        ),
        ("description", args.description.map(Value::from)),
        ("telemetry_origin", args.telemetry_origin.map(Value::from)),
    ] {
        if let Some(value) = value {
            body[field] = value;
        }
    }
    let created = client.call("POST", "/deployments", Some(&body), Action::Change)?;
    if !args.wait {
        print_deployment(format, &created);
        return Ok(exit::OK);
    }
    let id = created["id"].as_i64().unwrap_or_default();
    if format == Format::Table {
        crate::outln!("deployment {id} created");
    }
    crate::watch::follow_rollout(client, format, id, args.timeout)
}

pub fn list(client: &Client, format: Format, args: &List) -> Result<u8, CallError> {
    let page = client.get(&format!("/deployments?limit={}", args.limit), Action::Read)?;
    match format {
        Format::Json => output::json(&page),
        Format::Table => {
            let rows: Vec<Vec<String>> = items(&page).iter().map(deployment_row).collect();
            output::table(&DEPLOYMENT_HEADERS, &rows);
        }
    }
    Ok(exit::OK)
}

pub fn get(client: &Client, format: Format, args: &One) -> Result<u8, CallError> {
    let d = client.get(&format!("/deployments/{}", args.id), Action::Read)?;
    print_deployment(format, &d);
    Ok(exit::OK)
}

pub fn scale(client: &Client, format: Format, args: &Scale) -> Result<u8, CallError> {
    let d = client.call(
        "PATCH",
        &format!("/deployments/{}", args.id),
        Some(&json!({"target_node_count": args.nodes})),
        Action::Change,
    )?;
    print_deployment(format, &d);
    Ok(exit::OK)
}

pub fn pause_or_resume(
    client: &Client,
    format: Format,
    args: &One,
    verb: &str,
) -> Result<u8, CallError> {
    let d = client.call(
        "POST",
        &format!("/deployments/{}/{verb}", args.id),
        None,
        Action::Change,
    )?;
    print_deployment(format, &d);
    Ok(exit::OK)
}

pub fn remove(client: &Client, format: Format, args: &One) -> Result<u8, CallError> {
    client.call(
        "DELETE",
        &format!("/deployments/{}", args.id),
        None,
        Action::Delete,
    )?;
    if format == Format::Table {
        crate::outln!("deployment {} deleted", args.id);
    }
    Ok(exit::OK)
}

/// The alerts' rows: their fields, and whether someone acknowledged them.
fn alert_rows(alerts: &[Value]) -> Vec<Vec<String>> {
    let fields = [
        "id",
        "fingerprint",
        "state",
        "severity",
        "deployment_id",
        "node_name",
        "active_since",
    ];
    let mut rows = output::rows(alerts, &fields);
    for (row, alert) in rows.iter_mut().zip(alerts) {
        let acknowledged = !alert["acknowledgement"].is_null();
        row.push(if acknowledged { "yes" } else { "-" }.to_owned());
    }
    rows
}

/// Every node of deployment `id` (in `state`), page by page.
fn all_nodes(client: &Client, id: i64, state: Option<NodeState>) -> Result<Vec<Value>, CallError> {
    let mut nodes = Vec::new();
    loop {
        let mut path = format!("/deployments/{id}/nodes?skip={}&limit=1000", nodes.len());
        if let Some(state) = state {
            path.push_str(&format!("&state={}", state.as_str()));
        }
        let page = client.get(&path, Action::Read)?;
        let got = items(&page["nodes"]).to_vec();
        let total = page["total"].as_u64().unwrap_or(0) as usize;
        let done = got.is_empty();
        nodes.extend(got);
        if done || nodes.len() >= total {
            return Ok(nodes);
        }
    }
}

pub fn retry(client: &Client, format: Format, args: &Retry) -> Result<u8, CallError> {
    let names: Vec<String> = if args.all_failed {
        all_nodes(client, args.id, Some(NodeState::Failed))?
            .iter()
            .map(|n| cell(&n["node_id"]))
            .collect()
    } else {
        args.nodes.clone()
    };
    let mut retried = Vec::new();
    for name in &names {
        retried.push(client.call(
            "POST",
            &format!("/deployments/{}/nodes/{name}/retry", args.id),
            None,
            Action::Change,
        )?);
    }
    match format {
        Format::Json => output::json(&Value::Array(retried)),
        Format::Table if retried.is_empty() => crate::outln!("no failed node to retry"),
        Format::Table => output::table(
            &["NODE", "STATE", "ATTEMPT"],
            &output::rows(&retried, &["node_id", "state", "attempt"]),
        ),
    }
    Ok(exit::OK)
}

pub fn nodes(client: &Client, format: Format, args: &Nodes) -> Result<u8, CallError> {
    let nodes = all_nodes(client, args.id, args.state)?;
    match format {
        Format::Json => output::json(&json!({"nodes": nodes, "total": nodes.len()})),
        Format::Table => output::table(
            &[
                "NODE", "ID", "STATE", "ATTEMPT", "HOSTNAME", "ADDRESS", "FAILURE",
            ],
            &output::rows(
                &nodes,
                &[
                    "node_id",
                    "id",
                    "state",
                    "attempt",
                    "hostname",
                    "ip_address",
                    "failure_reason",
                ],
            ),
        ),
    }
    Ok(exit::OK)
}

pub fn top(client: &Client, format: Format, args: &Top) -> Result<u8, CallError> {
    let mut path = format!("/deployments/{}/bottlenecks", args.id);
    if let Some(method) = &args.method {
        path.push_str(&format!("?method={method}"));
    }
    let report = client.get(&path, Action::Read)?;
    match format {
        Format::Json => output::json(&report),
        Format::Table => {
            let rows = output::rows(
                items(&report["bottlenecks"]),
                &[
                    "node_identifier",
                    "deviation_score:2",
                    "latency_ms:2",
                    "throughput_gbps:3",
                    "error_rate:3",
                    "reasons",
                ],
            );
            if rows.is_empty() {
                crate::outln!("no bottleneck ({} method)", cell(&report["method"]));
            } else {
                output::table(
                    &[
                        "NODE",
                        "SCORE",
                        "LATENCY MS",
                        "THROUGHPUT GBPS",
                        "ERROR %",
                        "WHY",
                    ],
                    &rows,
                );
            }
        }
    }
    Ok(exit::OK)
}

pub fn telemetry(client: &Client, format: Format, args: &Telemetry) -> Result<u8, CallError> {
    let mut path = format!("/deployments/{}/telemetry?limit={}", args.id, args.limit);
    if let Some(node) = &args.node {
        path.push_str(&format!("&node_id={node}"));
    }
    if let Some(since) = args.since {
        let start = chrono::Utc::now()
            - chrono::Duration::from_std(since).unwrap_or(chrono::Duration::zero());
        path.push_str(&format!(
            "&start_time={}",
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    let page = client.get(&path, Action::Read)?;
    match format {
        Format::Json => output::json(&page),
        Format::Table => {
            let samples = items(&page["samples"]);
            let names = node_names(client, args.id, samples)?;
            let mut rows = output::rows(
                samples,
                &[
                    "timestamp",
                    "node_id",
                    "latency_ms:2",
                    "throughput_gbps:3",
                    "error_rate:3",
                ],
            );
            // Samples carry the node's numeric id; people know it by its name.
            for row in &mut rows {
                if let Some(name) = names.get(&row[1]) {
                    row[1] = name.clone();
                }
            }
            output::table(
                &["TIME", "NODE", "LATENCY MS", "THROUGHPUT GBPS", "ERROR %"],
                &rows,
            );
        }
    }
    Ok(exit::OK)
}

/// The names (`node-007`) of the nodes `samples` are of, by numeric id as a cell shows it: a
/// request per node for a few, the deployment's node listing for many.
fn node_names(
    client: &Client,
    deployment: i64,
    samples: &[serde_json::Value],
) -> Result<std::collections::HashMap<String, String>, CallError> {
    let ids: std::collections::BTreeSet<String> =
        samples.iter().map(|s| cell(&s["node_id"])).collect();
    let named = |node: &serde_json::Value| (cell(&node["id"]), cell(&node["node_id"]));
    if ids.len() <= 20 {
        // A node removed by a scale-down keeps its samples: it stays a number.
        Ok(ids
            .iter()
            .filter_map(|id| {
                client
                    .get(
                        &format!("/deployments/{deployment}/nodes/{id}"),
                        Action::Read,
                    )
                    .ok()
                    .map(|node| named(&node))
            })
            .collect())
    } else {
        let all = client.get(&format!("/deployments/{deployment}/nodes"), Action::Read)?;
        Ok(items(&all["nodes"]).iter().map(named).collect())
    }
}

pub fn alerts(client: &Client, format: Format, args: &Alerts) -> Result<u8, CallError> {
    let mut path = format!("/alerts?limit={}", args.limit);
    if args.firing {
        path.push_str("&state=firing");
    }
    if let Some(deployment) = args.deployment {
        path.push_str(&format!("&deployment_id={deployment}"));
    }
    let page = client.get(&path, Action::Read)?;
    match format {
        Format::Json => output::json(&page),
        Format::Table => output::table(
            &[
                "ID",
                "FINGERPRINT",
                "STATE",
                "SEVERITY",
                "DEPLOYMENT",
                "NODE",
                "SINCE",
                "ACK",
            ],
            &alert_rows(items(&page["alerts"])),
        ),
    }
    Ok(exit::OK)
}

pub fn ack(client: &Client, format: Format, args: &Ack) -> Result<u8, CallError> {
    let alert = client.call(
        "POST",
        &format!("/alerts/{}/ack", args.alert),
        Some(&json!({"comment": args.message})),
        Action::Respond,
    )?;
    match format {
        Format::Json => output::json(&alert),
        Format::Table => crate::outln!(
            "alert {} acknowledged by {}",
            cell(&alert["id"]),
            cell(&alert["acknowledgement"]["by"])
        ),
    }
    Ok(exit::OK)
}

pub fn silence(client: &Client, format: Format, args: &Silence) -> Result<u8, CallError> {
    let mut matchers: Vec<serde_json::Value> = args
        .deployment
        .map(|d| json!({"name": "deployment", "value": d.to_string()}))
        .into_iter()
        .collect();
    matchers.extend(args.matcher.iter().cloned());
    if !args.node.is_empty() {
        let names: Vec<String> = args.node.iter().map(|n| regex_literal(n)).collect();
        matchers.push(json!({"name": "node", "value": names.join("|"), "is_regex": true}));
    }
    let ends = chrono::Utc::now()
        + chrono::Duration::from_std(args.duration).unwrap_or(chrono::Duration::zero());
    let silence = client.call(
        "POST",
        "/silences",
        Some(&json!({
            "matchers": matchers,
            "ends_at": ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "comment": args.message,
        })),
        Action::Respond,
    )?;
    match format {
        Format::Json => output::json(&silence),
        Format::Table => crate::outln!(
            "silence {} until {}",
            cell(&silence["id"]),
            cell(&silence["ends_at"])
        ),
    }
    Ok(exit::OK)
}

/// `text` as a regular expression that matches it alone.
fn regex_literal(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_states_and_literals_read_as_an_operator_writes_them() {
        assert_eq!(
            parse_duration("90s"),
            Ok(std::time::Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("10m"),
            Ok(std::time::Duration::from_secs(600))
        );
        assert_eq!(
            parse_duration("1.5h"),
            Ok(std::time::Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("30"), Ok(std::time::Duration::from_secs(30)));
        assert!(parse_duration("10 weeks").is_err());
        assert!(parse_duration("-5m").is_err());
        assert_eq!(node_state("failed"), Ok(NodeState::Failed));
        assert!(
            node_state("broken")
                .expect_err("no such state")
                .contains("PENDING")
        );
        assert_eq!(regex_literal("node-0.1"), "node-0\\.1");
    }
}
