//! External provisioners: the profiles a worker is given (`--provisioners FILE`), the runs of
//! their programs, and the [`Provisioner`] the lifecycle asks about a node of such a profile.
//!
//! The lifecycle never waits on a program. A run is started by [`RunDriver::start`] for a node
//! that entered a phase, polled by [`RunDriver::settle`] on later ticks, and its result recorded
//! in `provisioner_runs`, which makes the node due; the lifecycle tick then reads the result
//! ([`RunResults`], the polled `Provisioner` of every external profile) and moves the node
//! through its guarded transition, as it would for the simulator. Any worker with the profile
//! can apply a result; only the run's lease holder records one.

mod driver;
pub mod process;
mod profiles;
pub mod protocol;

pub use driver::{RUN_LEASE, RunDriver};
pub use profiles::{DEFAULT_MAX_CONCURRENT_RUNS, Profile, Profiles, ProfilesError, Program};

use netorch_domain::{
    Node, NodeId, Phase, PhaseStatus, Provisioner, ProvisionerRun, RunOutcome, Timestamp,
};
use std::collections::HashMap;

/// What a [`RunDriver`] step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunDriverStep {
    /// Runs started.
    pub started: usize,
    /// Of those, runs taken over from a worker whose lease expired.
    pub taken_over: usize,
    /// Results recorded, by outcome.
    pub succeeded: usize,
    /// See `succeeded`.
    pub failed: usize,
    /// See `succeeded`.
    pub timed_out: usize,
    /// See `succeeded`.
    pub cancelled: usize,
    /// Runs that ended after another worker had taken them over (their result was dropped).
    pub lost: usize,
    /// Runs going after the step.
    pub running: usize,
}

/// How long after a node enters a phase of an external profile the lifecycle looks at it again
/// unless its run ends first (an ended run makes its node due at once): a safety net.
pub const RECHECK_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// The `Provisioner` of external profiles, for one lifecycle batch: what the recorded runs of
/// its nodes' current phases say.
#[derive(Debug, Default)]
pub struct RunResults {
    runs: HashMap<NodeId, ProvisionerRun>,
}

impl RunResults {
    /// The finished runs of the nodes' current phases (from `netorch_storage::runs::results`).
    pub fn new(runs: HashMap<NodeId, ProvisionerRun>) -> RunResults {
        RunResults { runs }
    }
}

impl RunResults {
    /// The addresses the nodes' provision runs reported.
    pub fn addresses(&self) -> impl Iterator<Item = (NodeId, &str)> {
        self.runs.iter().filter_map(|(node, run)| {
            (run.outcome == Some(RunOutcome::Succeeded))
                .then_some(run.address.as_deref())
                .flatten()
                .map(|address| (*node, address))
        })
    }
}

impl Provisioner for RunResults {
    fn assign_address(&self, _node: &Node) -> Result<Option<String>, String> {
        // The provision run reports it, if anything does.
        Ok(None)
    }

    fn phase_status(&self, node: &Node, phase: Phase, _now: Timestamp) -> PhaseStatus {
        let Some(run) = self.runs.get(&node.id).filter(|run| run.phase == phase) else {
            return PhaseStatus::InProgress;
        };
        let reason = || {
            run.message
                .clone()
                .unwrap_or_else(|| format!("{} failed", phase.as_str()))
        };
        match run.outcome {
            Some(RunOutcome::Succeeded) => match &run.address {
                Some(address) => PhaseStatus::SucceededAt(address.clone()),
                None => PhaseStatus::Succeeded,
            },
            Some(RunOutcome::Failed) => PhaseStatus::Failed(reason()),
            // Killed at the phase's deadline: a release that timed out is over (its message
            // kept with the run); the other phases fail as timed out.
            Some(RunOutcome::TimedOut) if phase == Phase::Decommissioning => {
                PhaseStatus::Failed(reason())
            }
            Some(RunOutcome::TimedOut) => PhaseStatus::TimedOut,
            // Its node left the phase: this is no longer the node's current phase.
            Some(RunOutcome::Cancelled) | None => PhaseStatus::InProgress,
        }
    }

    fn earliest_completion(&self, _node: &Node, _phase: Phase) -> chrono::TimeDelta {
        RECHECK_AFTER
    }
}
