//! Alerts and silences as the API shows them.

use crate::http::choice;
use crate::http::shapes::timestamp;
use netorch_domain::alert::{Acknowledgement, Matcher, OpenAlertCounts};
use netorch_domain::{Alert, AlertState, Severity, Silence, Timestamp};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Unresolved alerts, counted: a deployment's or the fleet's.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertCountsOut {
    /// Alerts firing now, silenced and acknowledged ones included.
    pub firing: u64,
    /// Firing alerts by severity (every severity named, 0 included).
    #[schema(schema_with = by_severity_schema)]
    pub firing_by_severity: BTreeMap<&'static str, u64>,
    /// Alerts whose condition holds but not yet for their rule's `for_seconds`.
    pub pending: u64,
}

impl From<&OpenAlertCounts> for AlertCountsOut {
    fn from(counts: &OpenAlertCounts) -> Self {
        AlertCountsOut {
            firing: counts.in_state(AlertState::Firing),
            firing_by_severity: Severity::ALL
                .iter()
                .map(|v| (v.as_str(), counts.get(AlertState::Firing, *v)))
                .collect(),
            pending: counts.in_state(AlertState::Pending),
        }
    }
}

fn by_severity_schema() -> utoipa::openapi::schema::Schema {
    choice::counts_schema::<Severity>("Firing alerts of each severity")
}

fn alert_state_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::AlertState>(
        "`pending` (its condition holds, for less than the rule's `for_seconds`), `firing`, or \
         `resolved` (final)",
    )
}

fn severity_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::Severity>("How urgent")
}

fn silence_state_schema() -> utoipa::openapi::schema::Schema {
    choice::schema::<netorch_domain::alert::SilenceState>(
        "`pending` (starts later), `active`, or `expired`",
    )
}

/// Who acknowledged an alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcknowledgementOut {
    /// The API key's name (`anonymous` on a server without keys).
    pub by: String,
    /// When.
    pub at: String,
    /// Why.
    pub comment: String,
}

impl From<Acknowledgement> for AcknowledgementOut {
    fn from(a: Acknowledgement) -> Self {
        AcknowledgementOut {
            by: a.by,
            at: timestamp(a.at),
            comment: a.comment,
        }
    }
}

/// An alert: one firing of one condition (a rule on a node, or on a deployment's fleet).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertOut {
    /// Id: a new firing after a resolve is a new alert.
    pub id: i64,
    /// 16 hex digits from the identity labels (`alertname`, `deployment`, `node`, `rule`), as
    /// Alertmanager computes a fingerprint: the same for every firing of one condition.
    pub fingerprint: String,
    /// The deployment.
    pub deployment_id: i64,
    /// The node's numeric id, for an alert about a node.
    pub node_id: Option<i64>,
    /// The node's name (`node-007`), for an alert about a node.
    pub node_name: Option<String>,
    /// The rule's name: `bottleneck`, or a threshold rule's.
    pub rule: String,
    /// `NetorchNodeBottleneck`, `NetorchNodeThreshold` or `NetorchFleetThreshold`.
    pub alertname: &'static str,
    /// How urgent.
    #[schema(schema_with = severity_schema)]
    pub severity: &'static str,
    /// Where it is in its life.
    #[schema(schema_with = alert_state_schema)]
    pub state: &'static str,
    /// The identity labels and `severity`.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `description`, and what was seen: the score or mean (`value`), the
    /// `threshold`, the `method` or `metric`, the `window_seconds`.
    pub annotations: BTreeMap<String, String>,
    /// When an evaluation first saw its condition hold.
    pub active_since: String,
    /// When it fired; null while pending.
    pub starts_at: Option<String>,
    /// When it resolved; null until then.
    pub ends_at: Option<String>,
    /// Since when a firing alert's condition has been clear (it resolves after the rule's
    /// `resolve_after_seconds`); null while it holds.
    pub clear_since: Option<String>,
    /// Who acknowledged it; null unless acknowledged.
    pub acknowledgement: Option<AcknowledgementOut>,
    /// Whether an active silence matches it (it is then not delivered).
    pub silenced: bool,
    /// The active silences that match it.
    pub silenced_by: Vec<i64>,
    /// The dashboard's page of its node, or of its deployment.
    pub generator_url: String,
    /// When it last changed.
    pub updated_at: String,
}

impl AlertOut {
    /// `alert`, its link on the dashboard at `external_url`.
    pub fn new(alert: Alert, external_url: &str) -> Self {
        let node_name = alert.labels.get("node").cloned();
        let generator_url = netorch_domain::alert::generator_url(&alert, external_url);
        let time = |at: Option<Timestamp>| at.map(timestamp);
        AlertOut {
            id: alert.id.get(),
            fingerprint: alert.fingerprint,
            deployment_id: alert.deployment_id.get(),
            node_id: alert.node_id.map(|n| n.get()),
            node_name,
            rule: alert.rule,
            alertname: alert.name.as_str(),
            severity: alert.severity.as_str(),
            state: alert.state.as_str(),
            silenced: !alert.silenced_by.is_empty(),
            silenced_by: alert.silenced_by.iter().map(|s| s.get()).collect(),
            labels: alert.labels,
            annotations: alert.annotations,
            active_since: timestamp(alert.active_since),
            starts_at: time(alert.starts_at),
            ends_at: time(alert.ends_at),
            clear_since: time(alert.clear_since),
            acknowledgement: alert.acknowledgement.map(AcknowledgementOut::from),
            generator_url,
            updated_at: timestamp(alert.updated_at),
        }
    }
}

/// A page of alerts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertList {
    /// Newest first.
    pub alerts: Vec<AlertOut>,
    /// Pass as `before` for the next page; null when this page was the last.
    pub next_before: Option<i64>,
}

/// A silence's condition on one label, as Alertmanager's.
#[derive(Debug, Serialize, ToSchema)]
pub struct MatcherOut {
    /// The label.
    pub name: String,
    /// The value, or the regular expression.
    pub value: String,
    /// Whether `value` is a regular expression (anchored at both ends).
    pub is_regex: bool,
    /// Whether the label must match (`true`) or must not.
    pub is_equal: bool,
}

impl From<Matcher> for MatcherOut {
    fn from(m: Matcher) -> Self {
        MatcherOut {
            name: m.name,
            value: m.value,
            is_regex: m.is_regex,
            is_equal: m.is_equal,
        }
    }
}

/// A silence.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceOut {
    /// Id.
    pub id: i64,
    /// All must match for an alert to be silenced.
    pub matchers: Vec<MatcherOut>,
    /// From when.
    pub starts_at: String,
    /// Until when (the moment it was expired, for one expired early).
    pub ends_at: String,
    /// Where it is in its life now.
    #[schema(schema_with = silence_state_schema)]
    pub state: &'static str,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// When it was made.
    pub created_at: String,
    /// Who expired it early; null otherwise.
    pub expired_by: Option<String>,
}

impl SilenceOut {
    /// `silence` as it stands at `now`.
    pub fn new(silence: Silence, now: Timestamp) -> Self {
        SilenceOut {
            id: silence.id.get(),
            state: silence.state(now).as_str(),
            matchers: silence.matchers.into_iter().map(MatcherOut::from).collect(),
            starts_at: timestamp(silence.starts_at),
            ends_at: timestamp(silence.ends_at),
            created_by: silence.created_by,
            comment: silence.comment,
            created_at: timestamp(silence.created_at),
            expired_by: silence.expired_by,
        }
    }
}

/// A page of silences.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceList {
    /// Newest first.
    pub silences: Vec<SilenceOut>,
    /// Pass as `before` for the next page; null when this page was the last.
    pub next_before: Option<i64>,
}
