//! What the rules see: the bottleneck report over the bottleneck rule's window, and each
//! node's and the fleet's mean of a metric over a threshold rule's window. Both read the
//! rollups (whole minutes, or hours less minutes) and raw samples only at the windows' edges,
//! so an evaluation's cost follows the number of nodes, not the history.

use super::decide::Observation;
use crate::ServiceError;
use crate::bottlenecks::{self, ReportQuery};
use chrono::TimeDelta;
use netorch_analytics::AnalysisConfig;
use netorch_domain::alert::{
    AlertName, BOTTLENECK_RULE_NAME, Labels, ThresholdRule, ThresholdScope, Timing,
};
use netorch_domain::remediation::REMEDIATION_RULE_NAME;
use netorch_domain::{AlertRules, Deployment, MetricKind, NodeId, SampleSummary, Timestamp};
use netorch_storage::rollups::{self, WindowDetail, WindowPart};
use netorch_storage::{Database, DbConnection, nodes};
use std::collections::{BTreeMap, HashMap};

/// The sum and count of each metric per node over a window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowMeans {
    per_node: BTreeMap<NodeId, (f64, [f64; 3])>,
}

impl WindowMeans {
    fn add(&mut self, node: NodeId, sign: f64, summary: &SampleSummary) {
        let entry = self.per_node.entry(node).or_default();
        let count = summary.count as f64;
        entry.0 += sign * count;
        entry.1[0] += sign * count * summary.latency_ms.mean;
        entry.1[1] += sign * count * summary.throughput_gbps.mean;
        entry.1[2] += sign * count * summary.error_rate.mean;
    }

    /// Each node's mean of `metric` (nodes with samples in the window).
    pub fn node_means(&self, metric: MetricKind) -> impl Iterator<Item = (NodeId, f64)> + '_ {
        let index = MetricKind::ALL
            .iter()
            .position(|m| *m == metric)
            .unwrap_or(0);
        self.per_node
            .iter()
            // Rounding may leave a node whose samples were all taken away at a count near 0.
            .filter(|(_, (count, _))| *count >= 0.5)
            .map(move |(node, (count, sums))| (*node, sums[index] / count))
    }

    /// The mean of `metric` over every sample of the window, with how many samples; `None`
    /// without samples.
    pub fn fleet_mean(&self, metric: MetricKind) -> Option<(f64, u64)> {
        let index = MetricKind::ALL
            .iter()
            .position(|m| *m == metric)
            .unwrap_or(0);
        let (count, sum) = self
            .per_node
            .values()
            .filter(|(count, _)| *count >= 0.5)
            .fold((0.0, 0.0), |(c, s), (count, sums)| {
                (c + count, s + sums[index])
            });
        (count >= 0.5).then(|| (sum / count, count.round() as u64))
    }
}

/// Every node's means over `[start, end]`, from the rollups and the raw samples at the edges.
pub fn window_means(
    conn: &mut DbConnection,
    deployment: netorch_domain::DeploymentId,
    (start, end): (Timestamp, Timestamp),
) -> Result<WindowMeans, ServiceError> {
    let mut means = WindowMeans::default();
    rollups::scan_window(
        conn,
        deployment,
        (start, end),
        WindowDetail::Coarsest,
        |part| match part {
            WindowPart::Sample(node, at, metrics) => {
                means.add(node, 1.0, &SampleSummary::of(at, &metrics))
            }
            WindowPart::Minute(node, _, summary) | WindowPart::Hour(node, _, summary) => {
                means.add(node, 1.0, summary)
            }
            WindowPart::LessMinute(node, _, summary) => means.add(node, -1.0, summary),
            WindowPart::LessSample(node, at, metrics) => {
                means.add(node, -1.0, &SampleSummary::of(at, &metrics))
            }
        },
    )?;
    Ok(means)
}

fn number(value: f64) -> String {
    format!("{value:.4}")
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_owned()
}

/// The conditions that hold for `deployment` at `now`, under its rules.
pub fn observe(
    db: &Database,
    deployment: &Deployment,
    now: Timestamp,
) -> Result<Vec<Observation>, ServiceError> {
    let rules: &AlertRules = &deployment.alert_rules;
    let mut observed = Vec::new();
    let window = |seconds: u32| (now - TimeDelta::seconds(i64::from(seconds)), now);
    let mut node_ids: Vec<NodeId> = Vec::new();
    // (rule, node, annotations) before node names are known.
    let mut node_conditions: Vec<(AlertName, usize, NodeId, Labels)> = Vec::new();
    let bottleneck = &rules.bottleneck;
    if bottleneck.enabled {
        let (start, end) = window(bottleneck.window_seconds);
        let config = AnalysisConfig::new(bottleneck.method, Some(bottleneck.threshold))?;
        let report = bottlenecks::report(
            db,
            ReportQuery {
                deployment: deployment.id,
                start,
                end,
                config,
            },
        )?;
        for flagged in &report.analysis.bottlenecks {
            let reasons: Vec<&str> = flagged.reasons.iter().map(|r| r.as_str()).collect();
            let mut annotations = Labels::new();
            annotations.insert("score".into(), number(flagged.deviation_score));
            annotations.insert("reasons".into(), reasons.join(", "));
            annotations.insert("threshold".into(), number(bottleneck.threshold));
            annotations.insert("method".into(), bottleneck.method.as_str().into());
            annotations.insert(
                "window_seconds".into(),
                bottleneck.window_seconds.to_string(),
            );
            for metric in MetricKind::ALL {
                annotations.insert(metric.as_str().into(), number(metric.of(&flagged.means)));
            }
            node_ids.push(flagged.node_id);
            node_conditions.push((
                AlertName::NodeBottleneck,
                usize::MAX,
                flagged.node_id,
                annotations,
            ));
        }
    }
    // One read per distinct window of the threshold rules.
    let mut by_window: HashMap<u32, WindowMeans> = HashMap::new();
    let mut conn = db.get()?;
    for (index, rule) in rules.thresholds.iter().enumerate() {
        let means = match by_window.entry(rule.window_seconds) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(window_means(
                &mut conn,
                deployment.id,
                window(rule.window_seconds),
            )?),
        };
        match rule.scope {
            ThresholdScope::Node => {
                for (node, mean) in means.node_means(rule.metric) {
                    if rule.op.holds(mean, rule.value) {
                        node_ids.push(node);
                        node_conditions.push((
                            AlertName::NodeThreshold,
                            index,
                            node,
                            threshold_annotations(rule, mean, None),
                        ));
                    }
                }
            }
            ThresholdScope::Fleet => {
                if let Some((mean, samples)) = means.fleet_mean(rule.metric)
                    && rule.op.holds(mean, rule.value)
                {
                    let mut annotations = threshold_annotations(rule, mean, Some(samples));
                    annotations.insert(
                        "summary".into(),
                        format!(
                            "Deployment {} fleet {} mean {} {} {} over {} s",
                            deployment.id,
                            rule.metric,
                            number(mean),
                            rule.op.as_str(),
                            number(rule.value),
                            rule.window_seconds
                        ),
                    );
                    observed.push(Observation {
                        name: AlertName::FleetThreshold,
                        node: None,
                        rule: rule.name.clone(),
                        severity: rule.severity,
                        timing: rule.timing,
                        annotations,
                    });
                }
            }
        }
    }
    node_ids.sort_unstable();
    node_ids.dedup();
    let names = nodes::names(&mut conn, deployment.id, &node_ids)?;
    for (name, index, node, mut annotations) in node_conditions {
        // A node deleted since its samples were read has no name: nothing to alert about.
        let Some(node_name) = names.get(&node) else {
            continue;
        };
        let (rule, severity, timing) = match rules.thresholds.get(index) {
            Some(rule) => (rule.name.clone(), rule.severity, rule.timing),
            None => (
                BOTTLENECK_RULE_NAME.to_owned(),
                bottleneck.severity,
                bottleneck.timing,
            ),
        };
        let summary = match name {
            AlertName::NodeBottleneck => format!(
                "{node_name} of deployment {} is a bottleneck ({}, score {})",
                deployment.id,
                annotations.get("reasons").map_or("", String::as_str),
                annotations.get("score").map_or("", String::as_str),
            ),
            _ => format!(
                "{node_name} of deployment {}: {} mean {} {} {}",
                deployment.id,
                annotations.get("metric").map_or("", String::as_str),
                annotations.get("value").map_or("", String::as_str),
                annotations.get("op").map_or("", String::as_str),
                annotations.get("threshold").map_or("", String::as_str),
            ),
        };
        annotations.insert("summary".into(), summary);
        observed.push(Observation {
            name,
            node: Some((node, node_name.clone())),
            rule,
            severity,
            timing,
            annotations,
        });
    }
    if let (Some(_), Some(stop)) = (&deployment.remediation, &deployment.remediation_stopped) {
        let mut annotations = Labels::new();
        annotations.insert("unhealthy_nodes".into(), stop.unhealthy.to_string());
        annotations.insert("total_nodes".into(), stop.total.to_string());
        annotations.insert(
            "max_unhealthy_percent".into(),
            number(stop.max_unhealthy_percent),
        );
        annotations.insert(
            "summary".into(),
            format!(
                "Self-healing of deployment {} stopped: {} of {} nodes unhealthy",
                deployment.id, stop.unhealthy, stop.total
            ),
        );
        annotations.insert("reason".into(), stop.reason());
        observed.push(Observation {
            name: AlertName::RemediationStopped,
            node: None,
            rule: REMEDIATION_RULE_NAME.to_owned(),
            severity: netorch_domain::Severity::Critical,
            // It fires with the pass that stops remediation (the pass already judged), and
            // resolves two minutes after the one that lets it go on: a deployment hovering at
            // its limit pages once, not at every pass.
            timing: Timing {
                for_seconds: 0,
                resolve_after_seconds: 120,
            },
            annotations,
        });
    }
    for observation in &mut observed {
        let description = describe(observation, deployment);
        observation
            .annotations
            .insert("description".into(), description);
    }
    Ok(observed)
}

fn threshold_annotations(rule: &ThresholdRule, mean: f64, samples: Option<u64>) -> Labels {
    let mut annotations = Labels::new();
    annotations.insert("metric".into(), rule.metric.as_str().into());
    annotations.insert("op".into(), rule.op.as_str().into());
    annotations.insert("value".into(), number(mean));
    annotations.insert("threshold".into(), number(rule.value));
    annotations.insert("window_seconds".into(), rule.window_seconds.to_string());
    if let Some(samples) = samples {
        annotations.insert("samples".into(), samples.to_string());
    }
    annotations
}

fn describe(observation: &Observation, deployment: &Deployment) -> String {
    let a = &observation.annotations;
    let get = |key: &str| a.get(key).map_or("", String::as_str);
    match observation.name {
        AlertName::NodeBottleneck => format!(
            "The {} bottleneck report over the last {} s of deployment '{}' scores this node {} \
             (threshold {}) on {}.",
            get("method"),
            get("window_seconds"),
            deployment.name,
            get("score"),
            get("threshold"),
            get("reasons"),
        ),
        AlertName::NodeThreshold => format!(
            "The node's mean {} over the last {} s is {}, {} {} (rule {}).",
            get("metric"),
            get("window_seconds"),
            get("value"),
            get("op"),
            get("threshold"),
            observation.rule,
        ),
        AlertName::FleetThreshold => format!(
            "The mean {} of every node of deployment '{}' over the last {} s ({} samples) is \
             {}, {} {} (rule {}): the whole fleet, which a peer comparison cannot see.",
            get("metric"),
            deployment.name,
            get("window_seconds"),
            get("samples"),
            get("value"),
            get("op"),
            get("threshold"),
            observation.rule,
        ),
        AlertName::RemediationStopped => format!(
            "Self-healing of deployment '{}' re-provisions no node: {}. Find the common cause \
             (a configuration, an upstream link); remediation goes on by itself once few \
             enough nodes are unhealthy.",
            deployment.name,
            get("reason"),
        ),
    }
}
