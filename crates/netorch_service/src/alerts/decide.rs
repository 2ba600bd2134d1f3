//! What one evaluation of a deployment changes, from what it observed and the alerts it has:
//! pure, so every case is tested here without a database.

use netorch_domain::alert::{AlertName, AlertStep, Labels, Timing, fingerprint, identity_labels};
use netorch_domain::{Alert, DeploymentId, NodeId, Severity, Timestamp};
use netorch_storage::alerts::{AlertChange, NewAlert};
use std::collections::{BTreeMap, HashMap};

/// A condition that holds at this evaluation: a rule on a node, or on the fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// What it is about.
    pub name: AlertName,
    /// The node, for a node's condition.
    pub node: Option<(NodeId, String)>,
    /// The rule's name.
    pub rule: String,
    /// The rule's severity.
    pub severity: Severity,
    /// The rule's timing.
    pub timing: Timing,
    /// What was seen: `summary`, `description`, the value or score, the threshold, ...
    pub annotations: Labels,
}

/// The timing of each rule the deployment has now, by name: an open alert whose rule is gone
/// (removed, or the bottleneck rule disabled) resolves at once.
pub type RuleTimings = HashMap<String, Timing>;

/// The changes for `deployment`'s evaluation at `now`: from the conditions that hold
/// (`observed`), the deployment's unresolved alerts (`open`) and the silences (`silencing`
/// says which active silences match a set of labels).
pub fn decide(
    deployment: DeploymentId,
    observed: Vec<Observation>,
    open: &[Alert],
    timings: &RuleTimings,
    silencing: &dyn Fn(&Labels) -> Vec<netorch_domain::SilenceId>,
    now: Timestamp,
) -> Vec<AlertChange> {
    let mut holding: BTreeMap<String, Observation> = BTreeMap::new();
    for observation in observed {
        let labels = identity_labels(
            observation.name,
            deployment,
            observation.node.as_ref().map(|(_, name)| name.as_str()),
            &observation.rule,
        );
        holding.insert(fingerprint(&labels), observation);
    }
    let mut changes = Vec::new();
    for alert in open {
        let now_holding = holding.remove(&alert.fingerprint);
        let timing = timings.get(&alert.rule).copied().unwrap_or(Timing {
            for_seconds: 0,
            resolve_after_seconds: 0,
        });
        let current = Some((alert.state, alert.active_since, alert.clear_since));
        let step = AlertStep::next(current, now_holding.is_some(), timing, now);
        match step {
            AlertStep::Fire => {
                let annotations =
                    now_holding.map_or_else(|| alert.annotations.clone(), |o| o.annotations);
                changes.push(AlertChange::Fire(alert.id, annotations));
            }
            AlertStep::Drop => changes.push(AlertChange::Drop(alert.id)),
            AlertStep::StartClearing => changes.push(AlertChange::StartClearing(alert.id)),
            AlertStep::HoldsAgain => changes.push(AlertChange::HoldsAgain(alert.id)),
            AlertStep::Resolve => changes.push(AlertChange::Resolve(alert.id)),
            AlertStep::Keep | AlertStep::Open { .. } => {}
        }
        if !matches!(step, AlertStep::Drop | AlertStep::Resolve) {
            let silenced_by = silencing(&alert.labels);
            if silenced_by != alert.silenced_by {
                changes.push(AlertChange::Silence(alert.id, silenced_by));
            }
        }
    }
    // What holds with no open alert: new alerts.
    for (fingerprint, observation) in holding {
        let AlertStep::Open { firing } = AlertStep::next(None, true, observation.timing, now)
        else {
            continue;
        };
        let node_name = observation.node.as_ref().map(|(_, name)| name.as_str());
        let mut labels =
            identity_labels(observation.name, deployment, node_name, &observation.rule);
        labels.insert("severity".into(), observation.severity.as_str().into());
        let silenced_by = silencing(&labels);
        changes.push(AlertChange::Open(NewAlert {
            fingerprint,
            deployment_id: deployment,
            node_id: observation.node.as_ref().map(|(id, _)| *id),
            rule: observation.rule,
            name: observation.name,
            severity: observation.severity,
            labels,
            annotations: observation.annotations,
            firing,
            silenced_by,
        }));
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use netorch_domain::{AlertId, AlertState, SilenceId};

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    fn observation(node: i64) -> Observation {
        Observation {
            name: AlertName::NodeBottleneck,
            node: Some((NodeId(node), format!("node-{node:03}"))),
            rule: "bottleneck".into(),
            severity: Severity::Warning,
            timing: Timing {
                for_seconds: 60,
                resolve_after_seconds: 60,
            },
            annotations: Labels::from([("summary".into(), format!("node {node}"))]),
        }
    }

    fn timings() -> RuleTimings {
        RuleTimings::from([("bottleneck".into(), observation(1).timing)])
    }

    fn stored(change: &AlertChange, id: i64, state: AlertState, since: i64) -> Alert {
        let AlertChange::Open(new) = change else {
            panic!("not an open: {change:?}")
        };
        Alert {
            id: AlertId(id),
            fingerprint: new.fingerprint.clone(),
            deployment_id: new.deployment_id,
            node_id: new.node_id,
            rule: new.rule.clone(),
            name: new.name,
            severity: new.severity,
            state,
            labels: new.labels.clone(),
            annotations: new.annotations.clone(),
            active_since: at(since),
            starts_at: None,
            ends_at: None,
            clear_since: None,
            acknowledgement: None,
            silenced_by: new.silenced_by.clone(),
            updated_at: at(since),
        }
    }

    #[test]
    fn a_flagged_node_opens_fires_and_resolves() {
        let none = |_: &Labels| Vec::new();
        let d = DeploymentId(4);
        let changes = decide(d, vec![observation(7)], &[], &timings(), &none, at(0));
        assert_eq!(changes.len(), 1);
        let AlertChange::Open(new) = &changes[0] else {
            panic!("{changes:?}")
        };
        assert!(!new.firing);
        assert_eq!(new.labels["node"], "node-007");
        assert_eq!(new.labels["severity"], "warning");
        let pending = stored(&changes[0], 1, AlertState::Pending, 0);
        // Still flagged, not long enough: nothing; long enough: fires.
        assert!(
            decide(
                d,
                vec![observation(7)],
                std::slice::from_ref(&pending),
                &timings(),
                &none,
                at(30)
            )
            .is_empty()
        );
        let fire = decide(
            d,
            vec![observation(7)],
            std::slice::from_ref(&pending),
            &timings(),
            &none,
            at(60),
        );
        assert!(
            matches!(fire[..], [AlertChange::Fire(AlertId(1), _)]),
            "{fire:?}"
        );
        // No longer flagged while pending: dropped.
        assert_eq!(
            decide(d, vec![], &[pending], &timings(), &none, at(30)),
            [AlertChange::Drop(AlertId(1))]
        );
        let firing = stored(&changes[0], 1, AlertState::Firing, 0);
        assert_eq!(
            decide(
                d,
                vec![],
                std::slice::from_ref(&firing),
                &timings(),
                &none,
                at(90)
            ),
            [AlertChange::StartClearing(AlertId(1))]
        );
        let clearing = Alert {
            clear_since: Some(at(90)),
            ..firing
        };
        assert_eq!(
            decide(
                d,
                vec![observation(7)],
                std::slice::from_ref(&clearing),
                &timings(),
                &none,
                at(100)
            ),
            [AlertChange::HoldsAgain(AlertId(1))]
        );
        assert_eq!(
            decide(d, vec![], &[clearing], &timings(), &none, at(150)),
            [AlertChange::Resolve(AlertId(1))]
        );
    }

    #[test]
    fn a_removed_rule_resolves_its_alerts_at_once() {
        let none = |_: &Labels| Vec::new();
        let d = DeploymentId(4);
        let opened = decide(d, vec![observation(7)], &[], &timings(), &none, at(0));
        let firing = stored(&opened[0], 1, AlertState::Firing, 0);
        assert_eq!(
            decide(d, vec![], &[firing], &RuleTimings::new(), &none, at(1)),
            [AlertChange::Resolve(AlertId(1))]
        );
    }

    #[test]
    fn silences_are_marked_on_new_and_open_alerts() {
        let silencing = |labels: &Labels| {
            if labels.get("node").map(String::as_str) == Some("node-007") {
                vec![SilenceId(3)]
            } else {
                vec![]
            }
        };
        let d = DeploymentId(4);
        let changes = decide(
            d,
            vec![observation(7), observation(8)],
            &[],
            &timings(),
            &silencing,
            at(0),
        );
        let mut silenced: Vec<(String, bool)> = changes
            .iter()
            .filter_map(|c| match c {
                AlertChange::Open(n) => Some((n.labels["node"].clone(), !n.silenced_by.is_empty())),
                _ => None,
            })
            .collect();
        silenced.sort();
        assert_eq!(
            silenced,
            [
                ("node-007".to_owned(), true),
                ("node-008".to_owned(), false)
            ]
        );
        let first = changes
            .iter()
            .position(|c| matches!(c, AlertChange::Open(n) if n.labels["node"] == "node-007"))
            .expect("node-007's alert");
        // An open alert whose silence ended is unmarked.
        let mut alert = stored(&changes[first], 1, AlertState::Firing, 0);
        let none = |_: &Labels| Vec::new();
        assert_eq!(
            decide(
                d,
                vec![observation(7)],
                &[alert.clone()],
                &timings(),
                &none,
                at(10)
            ),
            [AlertChange::Silence(AlertId(1), vec![])]
        );
        alert.silenced_by.clear();
        assert!(decide(d, vec![observation(7)], &[alert], &timings(), &none, at(10)).is_empty());
    }
}
