//! The node lifecycle as an explicit transition table.
//!
//! ```text
//!            start           provisioned          configured
//! PENDING ──────────▶ PROVISIONING ──────▶ CONFIGURING ──────▶ RUNNING
//!  ▲  │ no address         │ failed,            │ failed,
//!  │  ▼                    │ timed out          │ timed out
//!  │                       ▼                    ▼
//!  └──────────────────── FAILED ◀──────────────┘
//!   retry (operator),
//!   auto retry (worker, after a backoff)
//!
//! RUNNING ──remediate (self-healing, crate::remediation)──▶ PENDING
//!
//! any state except DECOMMISSIONING ──decommission──▶ DECOMMISSIONING ──▶ (removed)
//! ```
//!
//! A deployment scaled down decommissions its newest nodes; the lifecycle worker removes a
//! decommissioning node once the provisioner has released it (the node's row goes, its events
//! and telemetry stay).
//!
//! Everything the lifecycle worker does and everything an operator may ask for is a
//! [`NodeTrigger`]; [`NodeState::apply`] looks the pair up in [`TRANSITIONS`] and refuses anything
//! that is not there with [`DomainError::IllegalTransition`].

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where a node is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    /// Created, waiting for the lifecycle worker.
    Pending,
    /// Hardware is being allocated; the node has its IP address.
    Provisioning,
    /// The device is being configured.
    Configuring,
    /// Operational; telemetry is collected. Terminal.
    Running,
    /// Provisioning or configuration failed. Terminal until an operator retries.
    Failed,
    /// Being released after a scale-down: no telemetry is collected, and the lifecycle worker
    /// removes the node once the provisioner has released it.
    Decommissioning,
}

impl NodeState {
    /// Every state, in lifecycle order.
    pub const ALL: [NodeState; 6] = [
        NodeState::Pending,
        NodeState::Provisioning,
        NodeState::Configuring,
        NodeState::Running,
        NodeState::Failed,
        NodeState::Decommissioning,
    ];

    /// The states the lifecycle worker still has work for.
    pub const IN_FLIGHT: [NodeState; 4] = [
        NodeState::Pending,
        NodeState::Provisioning,
        NodeState::Configuring,
        NodeState::Decommissioning,
    ];

    /// The upper-case name used in the API and in the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeState::Pending => "PENDING",
            NodeState::Provisioning => "PROVISIONING",
            NodeState::Configuring => "CONFIGURING",
            NodeState::Running => "RUNNING",
            NodeState::Failed => "FAILED",
            NodeState::Decommissioning => "DECOMMISSIONING",
        }
    }

    /// True for the states the lifecycle worker moves on by itself.
    pub const fn is_in_flight(self) -> bool {
        matches!(
            self,
            NodeState::Pending
                | NodeState::Provisioning
                | NodeState::Configuring
                | NodeState::Decommissioning
        )
    }

    /// The state `trigger` leads to from this one, or why it may not happen.
    pub fn apply(self, trigger: NodeTrigger) -> Result<NodeState, DomainError> {
        TRANSITIONS
            .iter()
            .find(|t| t.from == self && t.trigger == trigger)
            .map(|t| t.to)
            .ok_or_else(|| DomainError::IllegalTransition {
                from: self,
                trigger,
                allowed_actions: self.allowed_actions(),
            })
    }

    /// The operator actions this state allows (the API's `allowed_actions`).
    pub fn allowed_actions(self) -> Vec<OperatorAction> {
        OperatorAction::ALL
            .into_iter()
            .filter(|action| {
                TRANSITIONS
                    .iter()
                    .any(|t| t.from == self && t.trigger == action.trigger())
            })
            .collect()
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeState {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| DomainError::UnknownNodeState(s.to_owned()))
    }
}

/// What can move a node from one state to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeTrigger {
    /// The lifecycle worker picks up a pending node.
    StartProvisioning,
    /// The provisioner reports the hardware ready.
    ProvisioningSucceeded,
    /// Provisioning failed: it could not start (no address for the node) or the provisioner
    /// reports it failed.
    ProvisioningFailed,
    /// The configuration was applied.
    ConfigurationSucceeded,
    /// The configuration could not be applied.
    ConfigurationFailed,
    /// An operator asks for a failed node to go through its lifecycle again.
    Retry,
    /// The lifecycle worker sends a failed node back after its backoff, within the
    /// deployment's `max_retries`.
    AutoRetry,
    /// The node's phase took longer than the deployment's `phase_timeout_seconds`.
    PhaseTimedOut,
    /// The deployment was scaled down past the node: it is released and then removed.
    Decommission,
    /// Self-healing re-provisions a running node whose alert has fired for long enough
    /// ([`crate::remediation`]).
    Remediate,
}

impl NodeTrigger {
    /// Every trigger.
    pub const ALL: [NodeTrigger; 10] = [
        NodeTrigger::StartProvisioning,
        NodeTrigger::ProvisioningSucceeded,
        NodeTrigger::ProvisioningFailed,
        NodeTrigger::ConfigurationSucceeded,
        NodeTrigger::ConfigurationFailed,
        NodeTrigger::Retry,
        NodeTrigger::AutoRetry,
        NodeTrigger::PhaseTimedOut,
        NodeTrigger::Decommission,
        NodeTrigger::Remediate,
    ];

    /// A lower-case name for logs and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            NodeTrigger::StartProvisioning => "start_provisioning",
            NodeTrigger::ProvisioningSucceeded => "provisioning_succeeded",
            NodeTrigger::ProvisioningFailed => "provisioning_failed",
            NodeTrigger::ConfigurationSucceeded => "configuration_succeeded",
            NodeTrigger::ConfigurationFailed => "configuration_failed",
            NodeTrigger::Retry => "retry",
            NodeTrigger::AutoRetry => "auto_retry",
            NodeTrigger::PhaseTimedOut => "phase_timed_out",
            NodeTrigger::Decommission => "decommission",
            NodeTrigger::Remediate => "remediate",
        }
    }
}

impl fmt::Display for NodeTrigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The triggers an operator may ask for through the API (the rest belong to the workers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorAction {
    /// `POST .../nodes/{node}/retry`: a failed node starts over from `PENDING`.
    Retry,
}

impl OperatorAction {
    /// Every operator action.
    pub const ALL: [OperatorAction; 1] = [OperatorAction::Retry];

    /// The trigger the action fires.
    pub const fn trigger(self) -> NodeTrigger {
        match self {
            OperatorAction::Retry => NodeTrigger::Retry,
        }
    }

    /// The action's name in the API (`"retry"`).
    pub const fn as_str(self) -> &'static str {
        match self {
            OperatorAction::Retry => "retry",
        }
    }
}

/// One row of the transition table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state the node must be in.
    pub from: NodeState,
    /// What happens.
    pub trigger: NodeTrigger,
    /// The state the node ends up in.
    pub to: NodeState,
}

const fn row(from: NodeState, trigger: NodeTrigger, to: NodeState) -> Transition {
    Transition { from, trigger, to }
}

/// Every transition the lifecycle allows; anything else is refused.
pub const TRANSITIONS: [Transition; 16] = {
    use NodeState::*;
    use NodeTrigger::*;
    [
        row(Pending, StartProvisioning, Provisioning),
        row(Pending, ProvisioningFailed, Failed),
        row(Provisioning, ProvisioningSucceeded, Configuring),
        row(Provisioning, ProvisioningFailed, Failed),
        row(Provisioning, PhaseTimedOut, Failed),
        row(Configuring, ConfigurationSucceeded, Running),
        row(Configuring, ConfigurationFailed, Failed),
        row(Configuring, PhaseTimedOut, Failed),
        row(Failed, Retry, Pending),
        row(Failed, AutoRetry, Pending),
        row(Pending, Decommission, Decommissioning),
        row(Provisioning, Decommission, Decommissioning),
        row(Configuring, Decommission, Decommissioning),
        row(Running, Decommission, Decommissioning),
        row(Failed, Decommission, Decommissioning),
        row(Running, Remediate, Pending),
    ]
};

#[cfg(test)]
mod tests {
    use super::*;
    use NodeState::*;
    use NodeTrigger::*;

    /// The expected outcome of every (state, trigger) pair, written out by hand so that a change
    /// to the table has to change this too.
    fn expected(state: NodeState, trigger: NodeTrigger) -> Option<NodeState> {
        match (state, trigger) {
            (Pending, StartProvisioning) => Some(Provisioning),
            (Pending, ProvisioningFailed) => Some(Failed),
            (Provisioning, ProvisioningSucceeded) => Some(Configuring),
            (Provisioning, ProvisioningFailed) => Some(Failed),
            (Provisioning, PhaseTimedOut) => Some(Failed),
            (Configuring, ConfigurationSucceeded) => Some(Running),
            (Configuring, ConfigurationFailed) => Some(Failed),
            (Configuring, PhaseTimedOut) => Some(Failed),
            (Failed, Retry) => Some(Pending),
            (Failed, AutoRetry) => Some(Pending),
            (Pending, Decommission) => Some(Decommissioning),
            (Provisioning, Decommission) => Some(Decommissioning),
            (Configuring, Decommission) => Some(Decommissioning),
            (Running, Decommission) => Some(Decommissioning),
            (Failed, Decommission) => Some(Decommissioning),
            (Running, Remediate) => Some(Pending),
            _ => None,
        }
    }

    #[test]
    fn every_state_trigger_pair_follows_the_table() {
        for state in NodeState::ALL {
            for trigger in NodeTrigger::ALL {
                match (state.apply(trigger), expected(state, trigger)) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{state} + {trigger}"),
                    (
                        Err(DomainError::IllegalTransition {
                            from,
                            trigger: t,
                            allowed_actions,
                        }),
                        None,
                    ) => {
                        assert_eq!(from, state);
                        assert_eq!(t, trigger);
                        assert_eq!(allowed_actions, state.allowed_actions());
                    }
                    (got, want) => panic!("{state} + {trigger}: got {got:?}, want {want:?}"),
                }
            }
        }
    }

    #[test]
    fn only_failed_nodes_can_be_retried() {
        for state in NodeState::ALL {
            let want: Vec<OperatorAction> = if state == Failed {
                vec![OperatorAction::Retry]
            } else {
                vec![]
            };
            assert_eq!(state.allowed_actions(), want, "{state}");
        }
    }

    #[test]
    fn running_is_left_only_by_decommissioning_or_remediation() {
        for trigger in NodeTrigger::ALL {
            assert_eq!(
                Running.apply(trigger).is_ok(),
                matches!(trigger, Decommission | Remediate),
                "{trigger}"
            );
        }
    }

    #[test]
    fn a_decommissioning_node_goes_nowhere_but_away() {
        for trigger in NodeTrigger::ALL {
            assert!(Decommissioning.apply(trigger).is_err(), "{trigger}");
        }
        assert!(Decommissioning.allowed_actions().is_empty());
    }

    #[test]
    fn names_round_trip() {
        for state in NodeState::ALL {
            assert_eq!(state.as_str().parse::<NodeState>(), Ok(state));
            assert_eq!(
                serde_json::to_string(&state).expect("serialize"),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(
            "running".parse::<NodeState>(),
            Err(DomainError::UnknownNodeState("running".into()))
        );
    }

    #[test]
    fn in_flight_states_are_the_non_terminal_ones() {
        for state in NodeState::ALL {
            assert_eq!(state.is_in_flight(), NodeState::IN_FLIGHT.contains(&state));
        }
    }
}
