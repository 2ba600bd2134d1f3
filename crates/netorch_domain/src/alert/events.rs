//! The audit events of alerts and silences.

use crate::alert::{Alert, Silence};
use crate::event::object;
use crate::{DeploymentId, EventType, NewEvent, Timestamp};
use serde_json::json;

/// What an alert event's metadata says of the alert.
fn alert_metadata(alert: &Alert) -> serde_json::Map<String, serde_json::Value> {
    object(json!({
        "alert_id": alert.id,
        "fingerprint": alert.fingerprint,
        "alertname": alert.name.as_str(),
        "rule": alert.rule,
        "severity": alert.severity.as_str(),
        "node_name": alert.labels.get("node"),
        "summary": alert.annotations.get("summary"),
    }))
}

fn alert_event(alert: &Alert, event_type: EventType, what: &str, now: Timestamp) -> NewEvent {
    let about = alert
        .labels
        .get("node")
        .map_or_else(|| "the fleet".to_owned(), Clone::clone);
    NewEvent {
        deployment_id: Some(alert.deployment_id),
        node_id: alert.node_id,
        event_type,
        message: format!(
            "Alert {} {what} for {about} (rule {}, {})",
            alert.name.as_str(),
            alert.rule,
            alert.severity
        ),
        metadata: alert_metadata(alert),
        created_at: now,
    }
}

/// The deployment a silence is about, when one of its matchers names one by equality: its
/// events then show in that deployment's log and stream.
fn silenced_deployment(silence: &Silence) -> Option<DeploymentId> {
    silence
        .matchers
        .iter()
        .find(|m| m.name == "deployment" && m.is_equal && !m.is_regex)
        .and_then(|m| m.value.parse().ok())
        .map(DeploymentId)
}

fn silence_event(silence: &Silence, event_type: EventType, what: &str, now: Timestamp) -> NewEvent {
    let matchers: Vec<String> = silence.matchers.iter().map(ToString::to_string).collect();
    NewEvent {
        deployment_id: silenced_deployment(silence),
        node_id: None,
        event_type,
        message: format!("Silence {} {what}: {}", silence.id, matchers.join(", ")),
        metadata: object(json!({
            "silence_id": silence.id,
            "matchers": silence.matchers,
            "starts_at": silence.starts_at,
            "ends_at": silence.ends_at,
            "created_by": silence.created_by,
            "comment": crate::excerpt(&silence.comment),
        })),
        created_at: now,
    }
}

impl NewEvent {
    /// `ALERT_FIRING`.
    pub fn alert_firing(alert: &Alert, now: Timestamp) -> Self {
        alert_event(alert, EventType::AlertFiring, "firing", now)
    }

    /// `ALERT_RESOLVED`.
    pub fn alert_resolved(alert: &Alert, now: Timestamp) -> Self {
        alert_event(alert, EventType::AlertResolved, "resolved", now)
    }

    /// `ALERT_ACKNOWLEDGED`, with the operator's comment (the actor is added with `by`).
    pub fn alert_acknowledged(alert: &Alert, comment: &str, now: Timestamp) -> Self {
        alert_event(alert, EventType::AlertAcknowledged, "acknowledged", now)
            .with_metadata("comment", crate::excerpt(comment))
    }

    /// `ALERT_UNACKNOWLEDGED`.
    pub fn alert_unacknowledged(alert: &Alert, comment: &str, now: Timestamp) -> Self {
        alert_event(alert, EventType::AlertUnacknowledged, "unacknowledged", now)
            .with_metadata("comment", crate::excerpt(comment))
    }

    /// `SILENCE_CREATED`.
    pub fn silence_created(silence: &Silence, now: Timestamp) -> Self {
        silence_event(silence, EventType::SilenceCreated, "created", now)
    }

    /// `SILENCE_EXPIRED`: ended at its time, or expired early by someone (`by`).
    pub fn silence_expired(silence: &Silence, now: Timestamp) -> Self {
        silence_event(silence, EventType::SilenceExpired, "expired", now)
    }
}
