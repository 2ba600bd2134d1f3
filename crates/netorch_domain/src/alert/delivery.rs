//! Telling people: receivers (Alertmanager, a signed webhook, PagerDuty), the notifications
//! of the outbox, what each receiver is sent (pure functions of the alert, rendered when it is
//! sent), and how long to wait before trying again.

use crate::alert::{Alert, AlertState};
use crate::{AlertId, DomainError, NotificationId, ReceiverId, Severity, Timestamp};
use chrono::{SecondsFormat, TimeDelta};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::str::FromStr;

macro_rules! names {
    ($ty:ident, $error:ident, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every value.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The lower-case name used in the API and the database.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        impl FromStr for $ty {
            type Err = DomainError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $ty::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| DomainError::$error(s.to_owned()))
            }
        }
    };
}

/// What a receiver is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiverKind {
    /// `POST {url}/api/v2/alerts`: Alertmanager's own API, many alerts a request, firing ones
    /// sent again every minute.
    Alertmanager,
    /// `POST {url}` with Alertmanager's webhook payload, signed with HMAC-SHA256.
    Webhook,
    /// PagerDuty's Events API v2 (`trigger`, `acknowledge`, `resolve`).
    #[serde(rename = "pagerduty")]
    PagerDuty,
}

names!(ReceiverKind, UnknownReceiverKind,
    Alertmanager => "alertmanager", Webhook => "webhook", PagerDuty => "pagerduty");

impl ReceiverKind {
    /// Whether the kind needs a secret: the webhook's signing key, PagerDuty's routing key.
    pub const fn needs_secret(self) -> bool {
        matches!(self, ReceiverKind::Webhook | ReceiverKind::PagerDuty)
    }

    /// Whether it is told of acknowledgements (PagerDuty's `acknowledge`).
    pub const fn hears_acknowledgements(self) -> bool {
        matches!(self, ReceiverKind::PagerDuty)
    }
}

/// PagerDuty's Events API v2 endpoint: a PagerDuty receiver's URL unless one is given.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// A receiver as stored. Its secret stays in the database and in the requests it signs or
/// routes; the API shows only whether there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receiver {
    /// Id.
    pub id: ReceiverId,
    /// Unique name.
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// Alertmanager's base URL, the webhook's URL, or PagerDuty's events endpoint.
    pub url: String,
    /// The webhook's signing key or PagerDuty's routing key.
    pub secret: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// What it takes to make a receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceiver {
    /// Unique name.
    pub name: String,
    /// What it is.
    pub kind: ReceiverKind,
    /// Where to send.
    pub url: String,
    /// The secret, for the kinds that need one.
    pub secret: Option<String>,
}

/// The pattern [`check_http_url`] enforces, as a document states it (the port's range and an
/// IPv6 literal's form are checked besides).
pub const HTTP_URL_PATTERN: &str = "^https?://([^\\s/?#@\\[\\]]+@)?([A-Za-z0-9.-]+|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?([/?#][^\\s]*)?$";

/// Whether `url` is an `http://` or `https://` URL a client can send to: a host name, an IPv4
/// address or a bracketed IPv6 address, an optional port (1 to 65535) and user, and a path,
/// query and fragment without whitespace or control characters.
pub fn check_http_url(url: &str) -> Result<(), String> {
    let refuse = |why: &str| Err(format!("{url:?} is not an http:// or https:// URL: {why}"));
    let Some(rest) = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
    else {
        return refuse("it must start with http:// or https://");
    };
    if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return refuse("it holds a space or a control character");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = match authority.rsplit_once('@') {
        Some((user, host)) if !user.contains(['[', ']']) => host,
        Some(_) => return refuse("its user part holds a bracket"),
        None => authority,
    };
    let (host, port) = if let Some(inside) = host_port.strip_prefix('[') {
        let Some((address, after)) = inside.split_once(']') else {
            return refuse("an IPv6 address without its closing bracket");
        };
        if address.parse::<std::net::Ipv6Addr>().is_err() {
            return refuse("not an IPv6 address in the brackets");
        }
        match after {
            "" => (address, None),
            port => match port.strip_prefix(':') {
                Some(port) => (address, Some(port)),
                None => return refuse("something after the IPv6 address"),
            },
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty()
        || !host_port.starts_with('[')
            && !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return refuse("no host name or address");
    }
    if let Some(port) = port
        && port.parse::<u16>().ok().filter(|p| *p >= 1).is_none()
    {
        return refuse("a port is 1 to 65535");
    }
    Ok(())
}

/// The longest receiver name.
pub const RECEIVER_NAME_MAX: usize = 64;

/// Whether `name` may name a receiver: 1 to [`RECEIVER_NAME_MAX`] letters, digits, `.`, `_` or
/// `-` (it appears in logs, metrics' labels and the command line's arguments).
pub fn check_receiver_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > RECEIVER_NAME_MAX {
        return Err(format!(
            "a receiver's name is 1 to {RECEIVER_NAME_MAX} characters"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err("a receiver's name may hold only letters, digits, `.`, `_` and `-`".into());
    }
    Ok(())
}

impl NewReceiver {
    /// Fails unless the name passes [`check_receiver_name`], the URL [`check_http_url`], and a
    /// kind that needs a secret has one.
    pub fn check(&self) -> Result<(), DomainError> {
        check_receiver_name(&self.name).map_err(DomainError::InvalidReceiver)?;
        check_http_url(&self.url).map_err(DomainError::InvalidReceiver)?;
        if self.kind.needs_secret() && self.secret.as_deref().is_none_or(str::is_empty) {
            return Err(DomainError::InvalidReceiver(format!(
                "a {} receiver needs its secret (the {})",
                self.kind.as_str(),
                match self.kind {
                    ReceiverKind::PagerDuty => "integration's routing key",
                    _ => "key its requests are signed with",
                }
            )));
        }
        Ok(())
    }
}

/// What a notification tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationAction {
    /// The alert fired.
    Firing,
    /// It resolved.
    Resolved,
    /// Someone acknowledged it (PagerDuty only).
    Acknowledged,
}

names!(NotificationAction, UnknownNotificationAction,
    Firing => "firing", Resolved => "resolved", Acknowledged => "acknowledged");

/// Where a notification is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationState {
    /// To be sent (again).
    Pending,
    /// The receiver took it.
    Delivered,
    /// Given up on: refused for good, or still not taken after the maximum age.
    Failed,
}

names!(NotificationState, UnknownNotificationState,
    Pending => "pending", Delivered => "delivered", Failed => "failed");

/// A notification of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Id, in the order of the changes.
    pub id: NotificationId,
    /// To whom.
    pub receiver_id: ReceiverId,
    /// About which alert.
    pub alert_id: AlertId,
    /// The alert's fingerprint (PagerDuty's `dedup_key`).
    pub fingerprint: String,
    /// What it tells.
    pub action: NotificationAction,
    /// Where it is.
    pub state: NotificationState,
    /// Attempts so far.
    pub attempts: u32,
    /// When it is tried next, while pending.
    pub next_attempt_at: Timestamp,
    /// What the last attempt met.
    pub last_error: Option<String>,
    /// When the change it tells was made.
    pub created_at: Timestamp,
    /// When the receiver took it.
    pub delivered_at: Option<Timestamp>,
}

/// How long to wait before attempt `attempts + 1` after a retryable failure: 1 s doubling to
/// at most 5 minutes, less up to a fifth at random (`jitter` in `[0, 1)`), so that workers
/// retrying a receiver that came back do not all arrive at once; at least `retry_after` when
/// the receiver said so (429 and 503's `Retry-After`).
pub fn retry_delay(attempts: u32, jitter: f64, retry_after: Option<TimeDelta>) -> TimeDelta {
    let base = TimeDelta::seconds(1 << attempts.min(9)).min(TimeDelta::minutes(5));
    let jittered = base
        - TimeDelta::milliseconds(
            (base.num_milliseconds() as f64 * 0.2 * jitter.clamp(0.0, 1.0)) as i64,
        );
    retry_after.map_or(jittered, |asked| jittered.max(asked))
}

fn rfc3339(at: Timestamp) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The alert's page on the dashboard at `external_url` (its node's, or its deployment's).
pub fn generator_url(alert: &Alert, external_url: &str) -> String {
    match alert.labels.get("node") {
        Some(node) => format!(
            "{external_url}/ui/deployments/{}/nodes/{node}",
            alert.deployment_id
        ),
        None => format!("{external_url}/ui/deployments/{}", alert.deployment_id),
    }
}

/// How long Alertmanager keeps a firing alert it is not told of again: four re-sends
/// (`ALERTMANAGER_RESEND` apart), as Prometheus does.
pub const ALERTMANAGER_RESEND: TimeDelta = TimeDelta::seconds(60);

/// What a notification tells of `alert`: its firing, even when it has resolved since (a
/// firing sent late is still a firing, and its resolve follows it), or its resolve.
fn told_resolved(alert: &Alert, action: NotificationAction) -> bool {
    match action {
        NotificationAction::Firing => false,
        NotificationAction::Resolved => true,
        NotificationAction::Acknowledged => alert.state == AlertState::Resolved,
    }
}

/// One alert as Alertmanager's `POST /api/v2/alerts` takes it, telling `action`: a firing
/// ends four re-sends from `now` (so Alertmanager resolves it if netorch stops telling), a
/// resolve at the alert's end.
pub fn alertmanager_alert(
    alert: &Alert,
    action: NotificationAction,
    now: Timestamp,
    external_url: &str,
) -> Value {
    let ends_at = match (told_resolved(alert, action), alert.ends_at) {
        (true, Some(end)) => end,
        (true, None) => now,
        (false, _) => now + ALERTMANAGER_RESEND * 4,
    };
    json!({
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": rfc3339(alert.starts_at.unwrap_or(alert.active_since)),
        "endsAt": rfc3339(ends_at),
        "generatorURL": generator_url(alert, external_url),
    })
}

/// Alertmanager's webhook payload (`version: "4"`) telling `action` of one alert, as an
/// Alertmanager receiver named `receiver` would send it: any Alertmanager webhook consumer
/// reads it unchanged.
pub fn webhook_payload(
    receiver: &str,
    alert: &Alert,
    action: NotificationAction,
    external_url: &str,
) -> Value {
    let resolved = told_resolved(alert, action);
    let status = if resolved { "resolved" } else { "firing" };
    let zero = "0001-01-01T00:00:00Z".to_owned();
    let ends_at = if resolved {
        alert.ends_at.map_or(zero, rfc3339)
    } else {
        zero
    };
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{fingerprint=\"{}\"}}", alert.fingerprint),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": alert.name.as_str()},
        "commonLabels": alert.labels,
        "commonAnnotations": alert.annotations,
        "externalURL": external_url,
        "alerts": [{
            "status": status,
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": rfc3339(alert.starts_at.unwrap_or(alert.active_since)),
            "endsAt": ends_at,
            "generatorURL": generator_url(alert, external_url),
            "fingerprint": alert.fingerprint,
        }],
    })
}

/// PagerDuty's severity for ours (its four are critical, error, warning, info).
const fn pagerduty_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "critical",
        Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// The PagerDuty Events API v2 event telling `action` of `alert`, routed by `routing_key`;
/// `dedup_key` is the fingerprint, so the resolve closes the incident the trigger opened.
pub fn pagerduty_event(
    routing_key: &str,
    alert: &Alert,
    action: NotificationAction,
    external_url: &str,
) -> Value {
    let event_action = match action {
        NotificationAction::Firing => "trigger",
        NotificationAction::Acknowledged => "acknowledge",
        NotificationAction::Resolved => "resolve",
    };
    let mut event = json!({
        "routing_key": routing_key,
        "event_action": event_action,
        "dedup_key": alert.fingerprint,
    });
    if action == NotificationAction::Firing {
        let summary = alert
            .annotations
            .get("summary")
            .cloned()
            .unwrap_or_else(|| alert.name.as_str().to_owned());
        // PagerDuty takes at most 1,024 characters of summary.
        let summary: String = summary.chars().take(1024).collect();
        event["payload"] = json!({
            "summary": summary,
            "source": alert.labels.get("node").map_or_else(
                || format!("deployment {}", alert.deployment_id),
                |node| format!("deployment {} {node}", alert.deployment_id),
            ),
            "severity": pagerduty_severity(alert.severity),
            "timestamp": rfc3339(alert.starts_at.unwrap_or(alert.active_since)),
            "component": alert.labels.get("node"),
            "group": format!("deployment {}", alert.deployment_id),
            "class": alert.name.as_str(),
            "custom_details": {"labels": alert.labels, "annotations": alert.annotations},
        });
        event["client"] = json!("netorch");
        event["client_url"] = json!(generator_url(alert, external_url));
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{AlertName, Labels, fingerprint, identity_labels};
    use crate::{DeploymentId, NodeId};

    #[test]
    fn receiver_names_are_short_and_plain() {
        for name in [
            "am",
            "ops-hook",
            "pager.duty_1",
            &"x".repeat(RECEIVER_NAME_MAX),
        ] {
            assert_eq!(check_receiver_name(name), Ok(()), "{name}");
        }
        for name in [
            "",
            "two words",
            "caf\u{e9}",
            "a/b",
            &"x".repeat(RECEIVER_NAME_MAX + 1),
        ] {
            assert!(check_receiver_name(name).is_err(), "{name}");
        }
        let new = NewReceiver {
            name: "bad name".into(),
            kind: ReceiverKind::Alertmanager,
            url: "http://127.0.0.1:9093".into(),
            secret: None,
        };
        assert!(new.check().is_err());
    }

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    fn alert(state: AlertState) -> Alert {
        let mut labels = identity_labels(
            AlertName::NodeBottleneck,
            DeploymentId(4),
            Some("node-007"),
            "bottleneck",
        );
        let print = fingerprint(&labels);
        labels.insert("severity".into(), "critical".into());
        Alert {
            id: AlertId(9),
            fingerprint: print,
            deployment_id: DeploymentId(4),
            node_id: Some(NodeId(397)),
            rule: "bottleneck".into(),
            name: AlertName::NodeBottleneck,
            severity: Severity::Critical,
            state,
            labels,
            annotations: Labels::from([("summary".into(), "node-007 is slow".into())]),
            active_since: at(0),
            starts_at: Some(at(60)),
            ends_at: (state == AlertState::Resolved).then(|| at(600)),
            clear_since: None,
            acknowledgement: None,
            silenced_by: vec![],
            updated_at: at(600),
        }
    }

    #[test]
    fn urls_are_ones_a_client_can_send_to() {
        for good in [
            "http://127.0.0.1:9093",
            "https://hooks.example.com/netorch?x=1#y",
            "http://[::1]:8080/in",
            "https://user:pa55@am.example:443/",
        ] {
            assert_eq!(check_http_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://x",
            "http://",
            "http://[",
            "http://[::1",
            "http://[zz]/",
            "http://a b",
            "http://h:0",
            "http://h:70000",
            "http://h:x",
            "http://bad_host/",
            "http://[::1]x",
        ] {
            assert!(check_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retries_back_off_to_five_minutes_and_honour_retry_after() {
        assert_eq!(retry_delay(0, 0.0, None), TimeDelta::seconds(1));
        assert_eq!(retry_delay(3, 0.0, None), TimeDelta::seconds(8));
        assert_eq!(retry_delay(20, 0.0, None), TimeDelta::minutes(5));
        assert_eq!(retry_delay(3, 1.0, None), TimeDelta::milliseconds(6_400));
        assert_eq!(
            retry_delay(0, 0.5, Some(TimeDelta::seconds(30))),
            TimeDelta::seconds(30)
        );
    }

    #[test]
    fn payloads_carry_what_each_receiver_reads() {
        let firing = alert(AlertState::Firing);
        let am = alertmanager_alert(
            &firing,
            NotificationAction::Firing,
            at(100),
            "http://n:8000",
        );
        assert_eq!(am["labels"]["alertname"], "NetorchNodeBottleneck");
        assert_eq!(am["startsAt"], "2027-01-15T08:01:00.000Z");
        assert_eq!(
            am["endsAt"], "2027-01-15T08:05:40.000Z",
            "four re-sends from now"
        );
        assert_eq!(
            am["generatorURL"],
            "http://n:8000/ui/deployments/4/nodes/node-007"
        );
        let resolved = alert(AlertState::Resolved);
        assert_eq!(
            alertmanager_alert(&resolved, NotificationAction::Resolved, at(900), "")["endsAt"],
            "2027-01-15T08:10:00.000Z"
        );
        // A firing sent after the alert resolved is still a firing.
        assert_eq!(
            alertmanager_alert(&resolved, NotificationAction::Firing, at(900), "")["endsAt"],
            "2027-01-15T08:19:00.000Z"
        );
        assert_eq!(
            webhook_payload("ops", &resolved, NotificationAction::Firing, "")["status"],
            "firing"
        );
        let hook = webhook_payload("ops", &firing, NotificationAction::Firing, "http://n:8000");
        assert_eq!(hook["version"], "4");
        assert_eq!(hook["status"], "firing");
        assert_eq!(hook["alerts"][0]["fingerprint"], firing.fingerprint);
        assert_eq!(hook["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
        let told = webhook_payload("ops", &resolved, NotificationAction::Resolved, "");
        assert_eq!(told["status"], "resolved");
        assert_eq!(told["alerts"][0]["endsAt"], "2027-01-15T08:10:00.000Z");
        let trigger = pagerduty_event("R0UTING", &firing, NotificationAction::Firing, "");
        assert_eq!(trigger["event_action"], "trigger");
        assert_eq!(trigger["dedup_key"], firing.fingerprint);
        assert_eq!(trigger["payload"]["severity"], "critical");
        assert_eq!(trigger["payload"]["summary"], "node-007 is slow");
        let resolve = pagerduty_event("R0UTING", &resolved, NotificationAction::Resolved, "");
        assert_eq!(resolve["event_action"], "resolve");
        assert!(resolve.get("payload").is_none());
    }
}
