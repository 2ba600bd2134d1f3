//! The lifecycle tick.

use crate::WorkerError;
use chrono::Duration;
use netorch_domain::{Node, NodeState, NodeTrigger, Phase, PhaseStatus, Provisioner, Timestamp};
use netorch_storage::nodes::{self, NodeChange, TransitionPlan};
use netorch_storage::{DbConnection, StorageError, write_transaction};

/// Most nodes one tick reads; the rest wait for the next tick (oldest state change first).
const MAX_NODES_PER_TICK: i64 = 200_000;

/// What one lifecycle tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LifecycleTick {
    /// In-flight nodes read.
    pub examined: usize,
    /// Transitions decided.
    pub planned: usize,
    /// Transitions written (the rest were taken by another worker first).
    pub applied: usize,
}

/// What should happen to `node` at `now`, if anything: the pure decision of the lifecycle.
///
/// `PENDING` starts provisioning at once and gets its address (or fails without one);
/// `PROVISIONING` and `CONFIGURING` move on when the provisioner says their phase is over.
pub fn plan_transition(
    node: &Node,
    provisioner: &dyn Provisioner,
    now: Timestamp,
) -> Option<TransitionPlan> {
    let (trigger, change) = match node.state {
        NodeState::Pending => match provisioner.assign_address(node) {
            Ok(address) => (
                NodeTrigger::StartProvisioning,
                NodeChange {
                    ip_address: Some(address),
                    failure_reason: None,
                },
            ),
            Err(reason) => (
                NodeTrigger::ProvisioningFailed,
                NodeChange {
                    ip_address: None,
                    failure_reason: Some(reason),
                },
            ),
        },
        NodeState::Provisioning | NodeState::Configuring => {
            let (phase, succeeded, failed) = if node.state == NodeState::Provisioning {
                (
                    Phase::Provisioning,
                    NodeTrigger::ProvisioningSucceeded,
                    NodeTrigger::ProvisioningFailed,
                )
            } else {
                (
                    Phase::Configuring,
                    NodeTrigger::ConfigurationSucceeded,
                    NodeTrigger::ConfigurationFailed,
                )
            };
            match provisioner.phase_status(node, phase, now) {
                PhaseStatus::InProgress => return None,
                PhaseStatus::Succeeded => (succeeded, NodeChange::default()),
                PhaseStatus::Failed(reason) => (
                    failed,
                    NodeChange {
                        ip_address: None,
                        failure_reason: Some(reason),
                    },
                ),
            }
        }
        NodeState::Running | NodeState::Failed => return None,
    };
    // Every trigger above is legal from the state it is chosen for; a refusal would mean the
    // row changed under us, and the node is simply looked at again next tick.
    let plan = TransitionPlan::new(node, trigger, change).ok()?;
    // Come back when the next phase can first be over, and not before.
    let next_phase = match plan.to() {
        NodeState::Provisioning => Phase::Provisioning,
        NodeState::Configuring => Phase::Configuring,
        _ => return Some(plan),
    };
    let wait = Duration::from_std(provisioner.earliest_completion(node, next_phase))
        .unwrap_or(Duration::MAX);
    Some(plan.with_check_after(now.checked_add_signed(wait).unwrap_or(now)))
}

/// One pass of the lifecycle worker at `now`: reads the in-flight nodes that are due (each
/// node is scheduled for when its phase can first be over, from the provisioner's
/// [`earliest_completion`](Provisioner::earliest_completion)), decides each with
/// [`plan_transition`], and applies the decisions in bulk with one audit event each.
///
/// On SQLite the whole tick is one `BEGIN IMMEDIATE` transaction, so concurrent workers take
/// turns and each sees the other's result. On PostgreSQL the transitions are claimed with
/// `FOR UPDATE SKIP LOCKED` and guarded by the row version, so concurrent workers split the
/// nodes between them. Either way a node makes each transition once.
pub fn lifecycle_tick(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    now: Timestamp,
) -> Result<LifecycleTick, WorkerError> {
    let tick = write_transaction(conn, |conn| -> Result<_, StorageError> {
        let candidates = nodes::due_for_lifecycle(conn, now, MAX_NODES_PER_TICK)?;
        let plans: Vec<TransitionPlan> = candidates
            .iter()
            .filter_map(|node| plan_transition(node, provisioner, now))
            .collect();
        let applied = nodes::apply_transitions(conn, &plans, now)?;
        // Failures are what an operator acts on: one line each (the rest is the debug summary).
        if log::log_enabled!(log::Level::Info) && plans.iter().any(|p| p.to() == NodeState::Failed)
        {
            let applied: std::collections::HashSet<_> = applied.iter().copied().collect();
            for plan in plans.iter().filter(|p| p.to() == NodeState::Failed) {
                if applied.contains(&plan.node_id()) {
                    log::info!(
                        "node {} of deployment {} failed: {}",
                        plan.node_id(),
                        plan.deployment(),
                        plan.failure_reason().unwrap_or("no reason given")
                    );
                }
            }
        }
        Ok(LifecycleTick {
            examined: candidates.len(),
            planned: plans.len(),
            applied: applied.len(),
        })
    })?;
    Ok(tick)
}
