//! Rollout control: how fast a deployment's nodes are started, when its rollout stops by
//! itself, how failed nodes are retried and how long a phase may take; and the deployment's
//! status and progress, derived from the per-state counters its row keeps.
//!
//! Everything here is a pure function of the policy, the counters and the time given: the
//! lifecycle worker applies it, the storage keeps the counters in step.

use crate::NodeStateCounts;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// Finished nodes needed before `max_failure_percent` is judged (or all of a deployment's nodes,
/// when it has fewer): one early failure must not stop a rollout of thousands.
pub const MIN_FAILURE_SAMPLE: u64 = 10;

/// The wait before a node's first automatic retry; each further retry waits twice as long as
/// the one before, up to [`RETRY_BACKOFF_MAX`].
pub const RETRY_BACKOFF_BASE: TimeDelta = TimeDelta::seconds(10);

/// The longest wait before an automatic retry.
pub const RETRY_BACKOFF_MAX: TimeDelta = TimeDelta::seconds(600);

/// How a deployment's rollout is paced and guarded. The default (no field set) is the original
/// behaviour: every node starts at once, nothing stops the rollout, a failed node stays failed
/// until an operator retries it, and a phase may take as long as the hardware takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutPolicy {
    /// At most this many nodes in `PROVISIONING` or `CONFIGURING` at once; the others wait in
    /// `PENDING` and start, lowest id first, as others finish.
    pub max_in_flight: Option<u32>,
    /// Once more than this share (0 to 100) of the finished nodes has failed, the rollout
    /// pauses: no node leaves `PENDING` until it is resumed. Judged from
    /// [`MIN_FAILURE_SAMPLE`] finished nodes on.
    pub max_failure_percent: Option<f64>,
    /// How many times a node may be sent back from `FAILED` to `PENDING` automatically, after an
    /// exponential backoff ([`RolloutPolicy::retry_delay`]). Operator retries count against the
    /// same budget: it is compared with the node's `attempt`.
    pub max_retries: u32,
    /// How long a node may stay in `PROVISIONING` or in `CONFIGURING` before it fails with a
    /// timeout.
    pub phase_timeout_seconds: Option<u32>,
}

impl RolloutPolicy {
    /// How many pending nodes may start now, given the deployment's counters: all of them
    /// without `max_in_flight`, otherwise the room left under it.
    pub fn start_slots(&self, counts: &NodeStateCounts) -> u64 {
        let room = match self.max_in_flight {
            None => u64::MAX,
            Some(max) => u64::from(max).saturating_sub(counts.provisioning + counts.configuring),
        };
        room.min(counts.pending)
    }

    /// Whether the failed share of the finished nodes is over `max_failure_percent`, with
    /// enough of them finished to judge ([`MIN_FAILURE_SAMPLE`], or every node of a smaller
    /// deployment).
    pub fn failure_limit_exceeded(&self, counts: &NodeStateCounts) -> bool {
        let Some(limit) = self.max_failure_percent else {
            return false;
        };
        let finished = counts.running + counts.failed;
        let sample = MIN_FAILURE_SAMPLE.min(counts.total()).max(1);
        finished >= sample && (counts.failed as f64) * 100.0 > limit * finished as f64
    }

    /// How long a node that failed on attempt `attempt` waits before it is retried
    /// automatically, or `None` when its retry budget is spent: [`RETRY_BACKOFF_BASE`] doubled
    /// for every attempt so far, at most [`RETRY_BACKOFF_MAX`].
    pub fn retry_delay(&self, attempt: u32) -> Option<TimeDelta> {
        (attempt < self.max_retries).then(|| {
            let factor = 1i32
                .checked_shl(attempt)
                .filter(|f| *f > 0)
                .unwrap_or(i32::MAX);
            RETRY_BACKOFF_BASE
                .checked_mul(factor)
                .map_or(RETRY_BACKOFF_MAX, |d| d.min(RETRY_BACKOFF_MAX))
        })
    }

    /// How long a phase may take, if limited.
    pub fn phase_timeout(&self) -> Option<TimeDelta> {
        self.phase_timeout_seconds
            .map(|seconds| TimeDelta::seconds(i64::from(seconds)))
    }
}

/// Where a deployment's rollout stands as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DeploymentStatus {
    /// Nodes are still on their way (pending, in a phase, failed and waiting for their
    /// automatic retry, or being decommissioned).
    Progressing,
    /// Paused by an operator or by `max_failure_percent`, with nodes still unfinished: no node
    /// leaves `PENDING`; nodes already in a phase finish it.
    Paused,
    /// Every node is `RUNNING`.
    Complete,
    /// Every node is finished, and some are `FAILED` with no automatic retry left.
    Degraded,
}

impl DeploymentStatus {
    /// Every status.
    pub const ALL: [DeploymentStatus; 4] = [
        DeploymentStatus::Progressing,
        DeploymentStatus::Paused,
        DeploymentStatus::Complete,
        DeploymentStatus::Degraded,
    ];

    /// The upper-case name used in the API.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeploymentStatus::Progressing => "PROGRESSING",
            DeploymentStatus::Paused => "PAUSED",
            DeploymentStatus::Complete => "COMPLETE",
            DeploymentStatus::Degraded => "DEGRADED",
        }
    }

    /// The status of a deployment with these counters, paused or not.
    pub fn of(paused: bool, counts: &NodeStateCounts) -> DeploymentStatus {
        let progress = Progress::of(counts);
        if progress.finished < progress.total || counts.decommissioning > 0 {
            if paused {
                DeploymentStatus::Paused
            } else {
                DeploymentStatus::Progressing
            }
        } else if counts.failed > 0 {
            DeploymentStatus::Degraded
        } else {
            DeploymentStatus::Complete
        }
    }
}

/// How many of a deployment's nodes are finished: `RUNNING`, or `FAILED` with no automatic
/// retry coming; out of the nodes it keeps (decommissioning ones are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Nodes finished.
    pub finished: u64,
    /// The deployment's nodes, decommissioning ones aside.
    pub total: u64,
}

impl Progress {
    /// The progress these counters show.
    pub fn of(counts: &NodeStateCounts) -> Progress {
        Progress {
            finished: counts.running + counts.failed.saturating_sub(counts.retrying),
            total: counts.kept(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(
        pending: u64,
        in_phase: u64,
        running: u64,
        failed: u64,
        retrying: u64,
    ) -> NodeStateCounts {
        NodeStateCounts {
            pending,
            provisioning: in_phase,
            configuring: 0,
            running,
            failed,
            decommissioning: 0,
            retrying,
        }
    }

    #[test]
    fn no_policy_starts_every_pending_node() {
        let policy = RolloutPolicy::default();
        assert_eq!(policy.start_slots(&counts(1_000, 5, 0, 0, 0)), 1_000);
        assert!(!policy.failure_limit_exceeded(&counts(0, 0, 0, 100, 0)));
        assert_eq!(policy.retry_delay(0), None);
        assert_eq!(policy.phase_timeout(), None);
    }

    #[test]
    fn max_in_flight_leaves_room_for_what_is_in_a_phase() {
        let policy = RolloutPolicy {
            max_in_flight: Some(10),
            ..RolloutPolicy::default()
        };
        assert_eq!(policy.start_slots(&counts(100, 0, 0, 0, 0)), 10);
        assert_eq!(policy.start_slots(&counts(100, 7, 0, 0, 0)), 3);
        assert_eq!(policy.start_slots(&counts(100, 12, 0, 0, 0)), 0);
        assert_eq!(policy.start_slots(&counts(2, 3, 0, 0, 0)), 2);
    }

    #[test]
    fn the_failure_limit_waits_for_its_sample() {
        let policy = RolloutPolicy {
            max_failure_percent: Some(20.0),
            ..RolloutPolicy::default()
        };
        // 3 failed of 4 finished: 75 %, but only 4 of 100 nodes finished.
        assert!(!policy.failure_limit_exceeded(&counts(96, 0, 1, 3, 0)));
        // 3 of 10: 30 % > 20 %.
        assert!(policy.failure_limit_exceeded(&counts(90, 0, 7, 3, 0)));
        // 2 of 10: exactly 20 % is not over it.
        assert!(!policy.failure_limit_exceeded(&counts(90, 0, 8, 2, 0)));
        // A deployment of 3 nodes is judged once all 3 are finished.
        assert!(!policy.failure_limit_exceeded(&counts(1, 0, 1, 1, 0)));
        assert!(policy.failure_limit_exceeded(&counts(0, 0, 2, 1, 0)));
        let zero = RolloutPolicy {
            max_failure_percent: Some(0.0),
            ..RolloutPolicy::default()
        };
        assert!(zero.failure_limit_exceeded(&counts(0, 0, 9, 1, 0)));
        assert!(!zero.failure_limit_exceeded(&counts(0, 0, 10, 0, 0)));
    }

    #[test]
    fn retries_back_off_exponentially_until_the_budget_is_spent() {
        let policy = RolloutPolicy {
            max_retries: 3,
            ..RolloutPolicy::default()
        };
        assert_eq!(policy.retry_delay(0), Some(TimeDelta::seconds(10)));
        assert_eq!(policy.retry_delay(1), Some(TimeDelta::seconds(20)));
        assert_eq!(policy.retry_delay(2), Some(TimeDelta::seconds(40)));
        assert_eq!(policy.retry_delay(3), None);
        let many = RolloutPolicy {
            max_retries: u32::MAX,
            ..RolloutPolicy::default()
        };
        assert_eq!(many.retry_delay(6), Some(RETRY_BACKOFF_MAX));
        assert_eq!(many.retry_delay(40), Some(RETRY_BACKOFF_MAX));
    }

    #[test]
    fn status_and_progress_follow_the_counters() {
        use DeploymentStatus::*;
        let cases = [
            (false, counts(5, 0, 0, 0, 0), Progressing, 0),
            (true, counts(5, 0, 0, 0, 0), Paused, 0),
            (false, counts(0, 0, 5, 0, 0), Complete, 5),
            (true, counts(0, 0, 5, 0, 0), Complete, 5),
            (false, counts(0, 0, 4, 1, 0), Degraded, 5),
            // A failed node waiting for its automatic retry is not finished.
            (false, counts(0, 0, 4, 1, 1), Progressing, 4),
            (true, counts(0, 2, 3, 0, 0), Paused, 3),
        ];
        let shrinking = NodeStateCounts {
            running: 5,
            decommissioning: 2,
            ..NodeStateCounts::default()
        };
        assert_eq!(DeploymentStatus::of(false, &shrinking), Progressing);
        assert_eq!(
            Progress::of(&shrinking),
            Progress {
                finished: 5,
                total: 5
            }
        );
        for (paused, counts, status, finished) in cases {
            assert_eq!(DeploymentStatus::of(paused, &counts), status, "{counts:?}");
            assert_eq!(Progress::of(&counts).finished, finished, "{counts:?}");
            assert_eq!(Progress::of(&counts).total, 5);
        }
    }
}
