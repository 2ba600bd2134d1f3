//! Self-healing: a deployment's `remediation` policy and the decision, each alerts pass, of
//! which running nodes to re-provision. Pure: the alerts loop gathers what it needs (the
//! firing node alerts, the nodes on their way back) and applies what [`decide`] says.
//!
//! The model is Cluster API's `MachineHealthCheck`:
//! - a `RUNNING` node whose node alert has been firing for `after_seconds` is re-provisioned
//!   (`RUNNING → PENDING`, attempt + 1). Only an alert whose condition was first seen after the
//!   node's last remediation may remediate it: the alerts that were open then (the one that
//!   caused it, and any other, over windows still holding the old readings) do not, so a node
//!   with two alerts is not sent back twice. If it comes back and they still fire, it is left
//!   for an operator; a new alert after they resolved may remediate it again;
//! - at most `max_concurrent` nodes are on their way back at once;
//! - when more than `max_unhealthy_percent` of the deployment's nodes are unhealthy, nothing
//!   is remediated (`maxUnhealthy`'s short-circuit): a fault that wide is the fleet's (a bad
//!   configuration, an upstream outage), and re-provisioning would turn it into an outage.
//!
//! A node is unhealthy while one of its node alerts fires, or while it is on its way back from
//! a remediation (`PENDING`, `PROVISIONING` or `CONFIGURING` after one, or `FAILED` with an
//! automatic retry coming). A node whose re-provisioning failed for good waits for an operator
//! (its retry puts it on its way back again).

use crate::{AlertId, DomainError, NodeId, NodeState, Timestamp};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The name of the rule whose alert says that remediation stopped (its `rule` label); no
/// threshold rule may take it.
pub const REMEDIATION_RULE_NAME: &str = "remediation";

/// The most `after_seconds` may be: a week.
pub const MAX_AFTER_SECONDS: u32 = 7 * 24 * 3_600;

/// A deployment's self-healing policy. Off (absent) by default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Remediation {
    /// Seconds a node alert must have been firing before its node is re-provisioned.
    pub after_seconds: u32,
    /// The most nodes on their way back from a remediation at once (at least 1).
    pub max_concurrent: u32,
    /// Above this percentage of the deployment's nodes unhealthy, nothing is remediated
    /// (0 to 100).
    pub max_unhealthy_percent: f64,
}

impl Remediation {
    /// Refuses a policy out of range, naming the field.
    pub fn check(&self) -> Result<(), DomainError> {
        let invalid = |field: &str, reason: &str| {
            Err(DomainError::InvalidRemediation(format!("{field} {reason}")))
        };
        if self.after_seconds > MAX_AFTER_SECONDS {
            return invalid(
                "after_seconds",
                &format!("must be at most {MAX_AFTER_SECONDS} (a week)"),
            );
        }
        if self.max_concurrent == 0 {
            return invalid("max_concurrent", "must be at least 1");
        }
        if !(0.0..=100.0).contains(&self.max_unhealthy_percent) {
            return invalid("max_unhealthy_percent", "must be between 0 and 100");
        }
        Ok(())
    }
}

/// Why remediation stopped for a deployment, while it is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RemediationStop {
    /// Since when.
    pub since: Timestamp,
    /// Unhealthy nodes at the pass that stopped it (or the latest one that found it still
    /// stopped).
    pub unhealthy: u64,
    /// The deployment's nodes then.
    pub total: u64,
    /// The policy's limit then.
    pub max_unhealthy_percent: f64,
}

impl RemediationStop {
    /// The unhealthy share, in percent.
    pub fn unhealthy_percent(&self) -> f64 {
        percent(self.unhealthy, self.total)
    }

    /// A sentence for people: the deployment page, the alert, the event.
    pub fn reason(&self) -> String {
        format!(
            "{} of {} nodes are unhealthy ({:.1}%), more than max_unhealthy_percent {}: \
             remediation stopped, as a fault this wide is not a node's",
            self.unhealthy,
            self.total,
            self.unhealthy_percent(),
            self.max_unhealthy_percent
        )
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// A firing node alert, with its node as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringNodeAlert {
    /// The alert.
    pub alert: AlertId,
    /// When an evaluation first saw its condition hold.
    pub active_since: Timestamp,
    /// Its fingerprint (the `NODE_REMEDIATED` event names it).
    pub fingerprint: String,
    /// When it fired.
    pub firing_since: Timestamp,
    /// Its node.
    pub node: NodeId,
    /// The node's state.
    pub state: NodeState,
    /// The node's row version (the remediation is a guarded transition).
    pub version: i64,
    /// When self-healing last re-provisioned the node, if ever.
    pub remediated_at: Option<Timestamp>,
}

/// What the pass does for one deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Re-provision these (oldest alert first; possibly none).
    Remediate(Vec<FiringNodeAlert>),
    /// Too many unhealthy: remediate nothing, and say why.
    Stop {
        /// Unhealthy nodes.
        unhealthy: u64,
        /// The deployment's nodes.
        total: u64,
    },
}

/// Decides a pass at `now` for a deployment of `total` nodes under `policy`, from its firing
/// node alerts and the nodes on their way back from a remediation (`returning`).
pub fn decide(
    policy: &Remediation,
    firing: &[FiringNodeAlert],
    returning: &BTreeSet<NodeId>,
    total: u64,
    now: Timestamp,
) -> Decision {
    let mut unhealthy: BTreeSet<NodeId> = returning.clone();
    unhealthy.extend(firing.iter().map(|f| f.node));
    let unhealthy = unhealthy.len() as u64;
    if percent(unhealthy, total) > policy.max_unhealthy_percent {
        return Decision::Stop { unhealthy, total };
    }
    let room = u64::from(policy.max_concurrent).saturating_sub(returning.len() as u64);
    let due = now - TimeDelta::seconds(i64::from(policy.after_seconds));
    // A node's oldest due alert that has not remediated it yet.
    let mut per_node: BTreeMap<NodeId, &FiringNodeAlert> = BTreeMap::new();
    for candidate in firing.iter().filter(|f| {
        f.state == NodeState::Running
            && f.firing_since <= due
            && f.remediated_at.is_none_or(|at| f.active_since > at)
            && !returning.contains(&f.node)
    }) {
        let entry = per_node.entry(candidate.node).or_insert(candidate);
        if (candidate.firing_since, candidate.alert) < (entry.firing_since, entry.alert) {
            *entry = candidate;
        }
    }
    let mut chosen: Vec<&FiringNodeAlert> = per_node.into_values().collect();
    chosen.sort_by_key(|f| (f.firing_since, f.node));
    Decision::Remediate(
        chosen
            .into_iter()
            .take(usize::try_from(room).unwrap_or(usize::MAX))
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("valid")
    }

    fn policy() -> Remediation {
        Remediation {
            after_seconds: 60,
            max_concurrent: 2,
            max_unhealthy_percent: 40.0,
        }
    }

    fn firing(node: i64, alert: i64, since: i64) -> FiringNodeAlert {
        FiringNodeAlert {
            alert: AlertId(alert),
            active_since: at(since),
            fingerprint: format!("{alert:016x}"),
            firing_since: at(since),
            node: NodeId(node),
            state: NodeState::Running,
            version: 1,
            remediated_at: None,
        }
    }

    fn chosen(decision: Decision) -> Vec<i64> {
        match decision {
            Decision::Remediate(nodes) => nodes.iter().map(|f| f.node.get()).collect(),
            Decision::Stop { .. } => panic!("stopped"),
        }
    }

    #[test]
    fn an_alert_firing_long_enough_remediates_its_node_once() {
        let none = BTreeSet::new();
        let alert = firing(1, 10, 0);
        assert!(
            chosen(decide(
                &policy(),
                std::slice::from_ref(&alert),
                &none,
                10,
                at(59)
            ))
            .is_empty()
        );
        assert_eq!(
            chosen(decide(
                &policy(),
                std::slice::from_ref(&alert),
                &none,
                10,
                at(60)
            )),
            [1]
        );
        // Remediated at 60: neither this alert nor any other open then remediates it again.
        let done = FiringNodeAlert {
            remediated_at: Some(at(60)),
            ..alert.clone()
        };
        let other = FiringNodeAlert {
            alert: AlertId(12),
            active_since: at(30),
            firing_since: at(50),
            ..done.clone()
        };
        assert!(
            chosen(decide(
                &policy(),
                &[done.clone(), other],
                &none,
                10,
                at(600)
            ))
            .is_empty()
        );
        // An alert first seen after the remediation may remediate it again.
        let again = FiringNodeAlert {
            alert: AlertId(11),
            active_since: at(61),
            firing_since: at(90),
            ..done
        };
        assert!(
            chosen(decide(
                &policy(),
                std::slice::from_ref(&again),
                &none,
                10,
                at(149)
            ))
            .is_empty()
        );
        assert_eq!(chosen(decide(&policy(), &[again], &none, 10, at(150))), [1]);
    }

    #[test]
    fn only_running_nodes_not_on_their_way_back_are_remediated() {
        let mut failed = firing(1, 10, 0);
        failed.state = NodeState::Failed;
        let returning: BTreeSet<NodeId> = [NodeId(2)].into();
        let back = firing(2, 11, 0);
        let decision = decide(&policy(), &[failed, back], &returning, 10, at(600));
        assert!(chosen(decision).is_empty());
    }

    #[test]
    fn at_most_max_concurrent_are_on_their_way_back_oldest_alert_first() {
        let alerts = [firing(1, 10, 30), firing(2, 11, 10), firing(3, 12, 20)];
        let none = BTreeSet::new();
        assert_eq!(
            chosen(decide(&policy(), &alerts, &none, 10, at(600))),
            [2, 3]
        );
        let returning: BTreeSet<NodeId> = [NodeId(9)].into();
        assert_eq!(
            chosen(decide(&policy(), &alerts, &returning, 10, at(600))),
            [2]
        );
        let full: BTreeSet<NodeId> = [NodeId(8), NodeId(9)].into();
        assert!(chosen(decide(&policy(), &alerts[..1], &full, 10, at(600))).is_empty());
    }

    #[test]
    fn a_node_with_two_alerts_counts_once_and_goes_by_its_oldest() {
        let alerts = [firing(1, 10, 50), firing(1, 11, 5), firing(2, 12, 20)];
        let none = BTreeSet::new();
        let Decision::Remediate(nodes) = decide(&policy(), &alerts, &none, 5, at(600)) else {
            panic!("stopped");
        };
        let picked: Vec<(i64, i64)> = nodes
            .iter()
            .map(|f| (f.node.get(), f.alert.get()))
            .collect();
        assert_eq!(picked, [(1, 11), (2, 12)]);
    }

    #[test]
    fn past_max_unhealthy_percent_nothing_is_remediated() {
        // 4 of 10 is 40%: not more than the limit.
        let alerts: Vec<FiringNodeAlert> = (1..=4).map(|n| firing(n, n + 10, 0)).collect();
        let none = BTreeSet::new();
        assert_eq!(
            chosen(decide(&policy(), &alerts, &none, 10, at(600))).len(),
            2
        );
        // A fifth, or a node on its way back, makes 50%.
        let returning: BTreeSet<NodeId> = [NodeId(7)].into();
        assert_eq!(
            decide(&policy(), &alerts, &returning, 10, at(600)),
            Decision::Stop {
                unhealthy: 5,
                total: 10
            }
        );
        let stop = RemediationStop {
            since: at(600),
            unhealthy: 5,
            total: 10,
            max_unhealthy_percent: 40.0,
        };
        assert!(
            stop.reason()
                .starts_with("5 of 10 nodes are unhealthy (50.0%)")
        );
    }

    #[test]
    fn policies_out_of_range_are_refused() {
        assert!(policy().check().is_ok());
        for bad in [
            Remediation {
                max_concurrent: 0,
                ..policy()
            },
            Remediation {
                max_unhealthy_percent: 100.5,
                ..policy()
            },
            Remediation {
                max_unhealthy_percent: f64::NAN,
                ..policy()
            },
            Remediation {
                after_seconds: MAX_AFTER_SECONDS + 1,
                ..policy()
            },
        ] {
            assert!(
                matches!(bad.check(), Err(DomainError::InvalidRemediation(_))),
                "{bad:?}"
            );
        }
    }
}
