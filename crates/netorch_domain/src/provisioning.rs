//! Which provisioner drives a deployment's nodes, and what one run of an external provisioner
//! is: the vocabulary of provisioner profiles (docs/PROVISIONERS.md).
//!
//! A deployment names a profile at creation ([`Provisioning`]). `simulator` is built into every
//! worker (the simulator in netorch's binaries, an embedding program's own `Provisioner` in
//! its); the others are named in the profiles file the workers are given, and run a program
//! per node phase. Each such run is recorded ([`ProvisionerRun`]) so that any worker can tell
//! whether a phase is running, finished or abandoned, and an operator can read why it failed.

use crate::{DeploymentId, DomainError, NodeId, Phase, Timestamp};
use serde::{Deserialize, Serialize};

/// The profile every worker has, and the default: the worker's built-in provisioner.
pub const BUILTIN_PROFILE: &str = "simulator";

/// The longest profile name: a label, not a description.
pub const PROFILE_NAME_MAX_CHARS: usize = 64;

/// How a deployment's nodes are provisioned, chosen at creation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provisioning {
    /// The profile's name (`simulator` unless the deployment names another).
    pub profile: String,
    /// Free-form settings handed to every run of the profile's program (a JSON object).
    pub parameters: serde_json::Map<String, serde_json::Value>,
}

impl Default for Provisioning {
    fn default() -> Self {
        Provisioning {
            profile: BUILTIN_PROFILE.to_owned(),
            parameters: serde_json::Map::new(),
        }
    }
}

impl Provisioning {
    /// Whether this is the worker's built-in provisioner rather than a program it runs.
    pub fn is_builtin(&self) -> bool {
        self.profile == BUILTIN_PROFILE
    }
}

/// Whether `name` can name a profile: 1 to 64 ASCII letters, digits, `-`, `_` and `.`,
/// starting with a letter or digit (it appears in flags, files, logs and labels).
pub fn is_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= PROFILE_NAME_MAX_CHARS
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl Phase {
    /// Every phase, in the order a node meets them.
    pub const ALL: [Phase; 3] = [
        Phase::Provisioning,
        Phase::Configuring,
        Phase::Decommissioning,
    ];

    /// The phase's name in the provisioners' protocol and the runs' listing: `provision`,
    /// `configure`, `release`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "provision",
            Phase::Configuring => "configure",
            Phase::Decommissioning => "release",
        }
    }

    /// The phase a node in `state` is in, if any.
    pub fn of(state: crate::NodeState) -> Option<Phase> {
        match state {
            crate::NodeState::Provisioning => Some(Phase::Provisioning),
            crate::NodeState::Configuring => Some(Phase::Configuring),
            crate::NodeState::Decommissioning => Some(Phase::Decommissioning),
            _ => None,
        }
    }
}

impl std::str::FromStr for Phase {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Phase::ALL
            .into_iter()
            .find(|phase| phase.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                field: "phase",
                value: s.to_owned(),
            })
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// The program exited 0: the phase succeeded.
    Succeeded,
    /// The program exited otherwise, or could not start: the node fails with the run's message.
    Failed,
    /// It ran past the deployment's `phase_timeout_seconds` and was killed with its children.
    TimedOut,
    /// Its node left the phase (timed out, retried, deleted) while it ran: killed, result unused.
    Cancelled,
}

impl RunOutcome {
    /// Every outcome.
    pub const ALL: [RunOutcome; 4] = [
        RunOutcome::Succeeded,
        RunOutcome::Failed,
        RunOutcome::TimedOut,
        RunOutcome::Cancelled,
    ];

    /// Its name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Failed => "failed",
            RunOutcome::TimedOut => "timed_out",
            RunOutcome::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for RunOutcome {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == s)
            .ok_or_else(|| DomainError::UnknownValue {
                field: "outcome",
                value: s.to_owned(),
            })
    }
}

/// One run of an external provisioner for one phase of one node, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ProvisionerRun {
    /// Its id, increasing.
    pub id: i64,
    /// The node.
    pub node_id: NodeId,
    /// Its deployment.
    pub deployment_id: DeploymentId,
    /// The profile that ran it.
    pub profile: String,
    /// The phase.
    pub phase: Phase,
    /// When the node entered the phase: with `node_id` and `phase`, which phase of the node's
    /// life this run is for (a node retried goes through its phases again).
    pub phase_started_at: Timestamp,
    /// The node's attempt (0 at first).
    pub attempt: u32,
    /// How many times the program was started for this phase: more than 1 when a worker died
    /// mid-run and another ran it again.
    pub starts: u32,
    /// The worker running it (or that last ran it).
    pub holder: String,
    /// Until when the holder's claim holds unless renewed.
    pub lease_until: Timestamp,
    /// When the program was last started.
    pub started_at: Timestamp,
    /// When it ended; `None` while it runs.
    pub finished_at: Option<Timestamp>,
    /// How it ended; `None` while it runs.
    pub outcome: Option<RunOutcome>,
    /// The program's exit status, when it exited.
    pub exit_code: Option<i32>,
    /// What it said, or why it failed.
    pub message: Option<String>,
    /// The address it reported (provision only).
    pub address: Option<String>,
    /// The end of its standard output (at most [`RUN_OUTPUT_MAX_BYTES`]).
    pub stdout: String,
    /// The end of its standard error (at most [`RUN_OUTPUT_MAX_BYTES`]).
    pub stderr: String,
}

/// How much of each of a run's output streams is kept: the end, where failures are.
pub const RUN_OUTPUT_MAX_BYTES: usize = 32 * 1024;

/// How many runs are kept per node: the newest; older ones are deleted as new ones start.
pub const RUNS_KEPT_PER_NODE: i64 = 20;

/// The end of `text`, at most `max` bytes, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_are_labels() {
        for name in ["simulator", "lab-ansible", "a", "dc1.cmd_v2"] {
            assert!(is_profile_name(name), "{name}");
        }
        for name in ["", "-x", ".x", "a b", "é", &"a".repeat(65), "a/b"] {
            assert!(!is_profile_name(name), "{name}");
        }
    }

    #[test]
    fn phases_and_outcomes_round_trip_by_name() {
        for phase in Phase::ALL {
            assert_eq!(phase.as_str().parse::<Phase>().ok(), Some(phase));
        }
        for outcome in RunOutcome::ALL {
            assert_eq!(outcome.as_str().parse::<RunOutcome>().ok(), Some(outcome));
        }
        assert!("deploy".parse::<Phase>().is_err());
    }

    #[test]
    fn a_tail_keeps_the_end_at_a_character_boundary() {
        assert_eq!(tail("abc", 5), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
        assert_eq!(tail("aéb", 2), "b");
        assert_eq!(tail("aéb", 3), "éb");
    }
}
