//! An alert and how it moves: `pending` while its condition has held for less than the rule's
//! `for`, `firing`, then `resolved` once the condition has been clear for `resolve_after`.
//! Evaluation decides each step from the stored alert and what it observes now
//! ([`AlertStep::next`]); nothing here reads a clock.

use crate::{
    AlertId, DeploymentId, DomainError, NodeId, SilenceId, Timestamp,
    alert::{Severity, Timing},
};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Labels and annotations: names to text, in name order (Alertmanager's model).
pub type Labels = BTreeMap<String, String>;

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, for less than the rule's `for` so far: not told to anyone.
    Pending,
    /// The condition has held for the rule's `for`: told, until it resolves.
    Firing,
    /// It fired and its condition has been clear for the rule's `resolve_after`. Final: a new
    /// firing after this is a new alert.
    Resolved,
}

impl AlertState {
    /// The three, in the order an alert goes through them.
    pub const ALL: [AlertState; 3] = [
        AlertState::Pending,
        AlertState::Firing,
        AlertState::Resolved,
    ];

    /// The lower-case name used in the API and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AlertState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertState::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownAlertState(s.to_owned()))
    }
}

/// Unresolved alerts counted by state (pending or firing) and severity: a deployment's, or the
/// whole fleet's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenAlertCounts(Vec<(AlertState, Severity, u64)>);

impl OpenAlertCounts {
    /// The counts, one row per state and severity (a pair may repeat: rows add up).
    pub fn new(rows: Vec<(AlertState, Severity, u64)>) -> Self {
        OpenAlertCounts(rows)
    }

    /// How many are in `state` with `severity`.
    pub fn get(&self, state: AlertState, severity: Severity) -> u64 {
        self.0
            .iter()
            .filter(|(s, v, _)| *s == state && *v == severity)
            .map(|(.., n)| n)
            .sum()
    }

    /// How many are in `state`, whatever their severity.
    pub fn in_state(&self, state: AlertState) -> u64 {
        self.0
            .iter()
            .filter(|(s, ..)| *s == state)
            .map(|(.., n)| n)
            .sum()
    }
}

/// What an alert is about: its `alertname` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AlertName {
    /// A node the bottleneck rule flagged.
    NodeBottleneck,
    /// A node's mean past a threshold rule's value.
    NodeThreshold,
    /// The deployment's fleet mean past a threshold rule's value.
    FleetThreshold,
    /// Self-healing stopped for the deployment: too many of its nodes are unhealthy.
    RemediationStopped,
}

impl AlertName {
    /// Every one.
    pub const ALL: [AlertName; 4] = [
        AlertName::NodeBottleneck,
        AlertName::NodeThreshold,
        AlertName::FleetThreshold,
        AlertName::RemediationStopped,
    ];

    /// The `alertname` label's value.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertName::NodeBottleneck => "NetorchNodeBottleneck",
            AlertName::NodeThreshold => "NetorchNodeThreshold",
            AlertName::FleetThreshold => "NetorchFleetThreshold",
            AlertName::RemediationStopped => "NetorchRemediationStopped",
        }
    }
}

impl FromStr for AlertName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AlertName::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| DomainError::UnknownAlertName(s.to_owned()))
    }
}

/// The labels that make an alert what it is, and so its fingerprint: `alertname`,
/// `deployment` (the id: names are not unique and may change), `node` (its name, for an alert
/// about a node) and `rule`.
pub fn identity_labels(
    name: AlertName,
    deployment: DeploymentId,
    node_name: Option<&str>,
    rule: &str,
) -> Labels {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), name.as_str().into());
    labels.insert("deployment".into(), deployment.to_string());
    if let Some(node) = node_name {
        labels.insert("node".into(), node.into());
    }
    labels.insert("rule".into(), rule.into());
    labels
}

/// The fingerprint of `labels`, as Alertmanager computes one (`model.LabelsToSignature`): the
/// 64-bit FNV-1a hash of each name and value in name order, each followed by the byte 0xff,
/// written as 16 lower-case hex digits. So the fingerprint of the identity labels alone is
/// what Alertmanager would compute for them.
pub fn fingerprint(labels: &Labels) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut add = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{hash:016x}")
}

/// Who acknowledged a firing alert, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    /// The API key's name (or `anonymous` on a server without keys).
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// Why, in the operator's words.
    pub comment: String,
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Database id: one per firing (a new firing after a resolve is a new alert).
    pub id: AlertId,
    /// From the identity labels ([`fingerprint`]): the same for every firing of the same
    /// condition on the same node.
    pub fingerprint: String,
    /// The deployment.
    pub deployment_id: DeploymentId,
    /// The node, for an alert about one.
    pub node_id: Option<NodeId>,
    /// The rule's name (its `rule` label).
    pub rule: String,
    /// What it is about.
    pub name: AlertName,
    /// How urgent.
    pub severity: crate::Severity,
    /// Where it is in its life.
    pub state: AlertState,
    /// The identity labels and `severity`.
    pub labels: Labels,
    /// `summary`, `description`, and the observation: the value or score, the threshold, the
    /// method or metric, the window.
    pub annotations: Labels,
    /// When an evaluation first saw the condition hold.
    pub active_since: Timestamp,
    /// When it fired; `None` while pending.
    pub starts_at: Option<Timestamp>,
    /// When it resolved.
    pub ends_at: Option<Timestamp>,
    /// Since when a firing alert's condition has been clear (it resolves `resolve_after`
    /// later); `None` while it holds.
    pub clear_since: Option<Timestamp>,
    /// Who acknowledged it, while it fires.
    pub acknowledgement: Option<Acknowledgement>,
    /// The active silences that match its labels: it is not delivered while any does.
    pub silenced_by: Vec<SilenceId>,
    /// When it last changed.
    pub updated_at: Timestamp,
}

impl Alert {
    /// Whether a silence holds it back.
    pub fn is_silenced(&self) -> bool {
        !self.silenced_by.is_empty()
    }
}

/// What one evaluation does to the alert of one condition (a rule on a node, or on the fleet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStep {
    /// Nothing changes.
    Keep,
    /// The condition holds and there is no alert: a new one, firing at once when the rule's
    /// `for` is 0, else pending.
    Open {
        /// Whether it fires at once.
        firing: bool,
    },
    /// The pending alert's condition has held for `for`: it fires.
    Fire,
    /// The pending alert's condition no longer holds: it is dropped, never having been told
    /// (as Prometheus drops a pending alert).
    Drop,
    /// The firing alert's condition is clear for the first time: it resolves `resolve_after`
    /// from now unless the condition comes back.
    StartClearing,
    /// The firing alert's condition holds again before it resolved.
    HoldsAgain,
    /// The firing alert's condition has been clear for `resolve_after`: it resolves.
    Resolve,
}

impl AlertStep {
    /// The step for an alert whose latest unresolved version is `current` (its state, since
    /// when its condition held and since when it has been clear), when the condition `holds`
    /// or not at `now`, under `timing`.
    pub fn next(
        current: Option<(AlertState, Timestamp, Option<Timestamp>)>,
        holds: bool,
        timing: Timing,
        now: Timestamp,
    ) -> AlertStep {
        let for_ = TimeDelta::seconds(i64::from(timing.for_seconds));
        let resolve_after = TimeDelta::seconds(i64::from(timing.resolve_after_seconds));
        match (current, holds) {
            (None | Some((AlertState::Resolved, _, _)), true) => AlertStep::Open {
                firing: timing.for_seconds == 0,
            },
            (None | Some((AlertState::Resolved, _, _)), false) => AlertStep::Keep,
            (Some((AlertState::Pending, since, _)), true) if now - since >= for_ => AlertStep::Fire,
            (Some((AlertState::Pending, _, _)), true) => AlertStep::Keep,
            (Some((AlertState::Pending, _, _)), false) => AlertStep::Drop,
            (Some((AlertState::Firing, _, Some(_))), true) => AlertStep::HoldsAgain,
            (Some((AlertState::Firing, _, None)), true) => AlertStep::Keep,
            (Some((AlertState::Firing, _, None)), false) if timing.resolve_after_seconds == 0 => {
                AlertStep::Resolve
            }
            (Some((AlertState::Firing, _, None)), false) => AlertStep::StartClearing,
            (Some((AlertState::Firing, _, Some(clear))), false) if now - clear >= resolve_after => {
                AlertStep::Resolve
            }
            (Some((AlertState::Firing, _, Some(_))), false) => AlertStep::Keep,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    #[test]
    fn open_alert_counts_add_up_by_state_and_severity() {
        let counts = OpenAlertCounts::new(vec![
            (AlertState::Firing, Severity::Critical, 2),
            (AlertState::Firing, Severity::Warning, 3),
            (AlertState::Pending, Severity::Warning, 4),
            (AlertState::Firing, Severity::Critical, 1),
        ]);
        assert_eq!(counts.get(AlertState::Firing, Severity::Critical), 3);
        assert_eq!(counts.get(AlertState::Pending, Severity::Critical), 0);
        assert_eq!(counts.in_state(AlertState::Firing), 6);
        assert_eq!(counts.in_state(AlertState::Pending), 4);
        assert_eq!(OpenAlertCounts::default().in_state(AlertState::Firing), 0);
    }

    #[test]
    fn an_alert_fires_after_for_and_resolves_after_resolve_after() {
        let timing = Timing {
            for_seconds: 60,
            resolve_after_seconds: 60,
        };
        let step = |current, holds, now| AlertStep::next(current, holds, timing, at(now));
        assert_eq!(step(None, false, 0), AlertStep::Keep);
        assert_eq!(step(None, true, 0), AlertStep::Open { firing: false });
        let pending = Some((AlertState::Pending, at(0), None));
        assert_eq!(step(pending, true, 59), AlertStep::Keep);
        assert_eq!(step(pending, true, 60), AlertStep::Fire);
        assert_eq!(step(pending, false, 30), AlertStep::Drop);
        let firing = Some((AlertState::Firing, at(0), None));
        assert_eq!(step(firing, true, 90), AlertStep::Keep);
        assert_eq!(step(firing, false, 90), AlertStep::StartClearing);
        let clearing = Some((AlertState::Firing, at(0), Some(at(90))));
        assert_eq!(step(clearing, false, 149), AlertStep::Keep);
        assert_eq!(step(clearing, true, 120), AlertStep::HoldsAgain);
        assert_eq!(step(clearing, false, 150), AlertStep::Resolve);
        let resolved = Some((AlertState::Resolved, at(0), None));
        assert_eq!(step(resolved, true, 200), AlertStep::Open { firing: false });
    }

    #[test]
    fn zero_timings_fire_and_resolve_at_once() {
        let timing = Timing {
            for_seconds: 0,
            resolve_after_seconds: 0,
        };
        assert_eq!(
            AlertStep::next(None, true, timing, at(0)),
            AlertStep::Open { firing: true }
        );
        assert_eq!(
            AlertStep::next(
                Some((AlertState::Firing, at(0), None)),
                false,
                timing,
                at(5)
            ),
            AlertStep::Resolve
        );
    }

    #[test]
    fn fingerprints_are_alertmanagers() {
        // prometheus/common's test vectors (model/signature_test.go): 14695981039346656037
        // and 5799056148416392346.
        let mut labels = Labels::new();
        assert_eq!(fingerprint(&labels), "cbf29ce484222325");
        labels.insert("name".into(), "garland, briggs".into());
        labels.insert("fear".into(), "love is not enough".into());
        assert_eq!(fingerprint(&labels), "507a62d79ee76c9a");
        let node = identity_labels(
            AlertName::NodeBottleneck,
            DeploymentId(4),
            Some("node-007"),
            "bottleneck",
        );
        let other = identity_labels(
            AlertName::NodeBottleneck,
            DeploymentId(4),
            Some("node-008"),
            "bottleneck",
        );
        assert_ne!(fingerprint(&node), fingerprint(&other));
        assert_eq!(fingerprint(&node).len(), 16);
    }
}
