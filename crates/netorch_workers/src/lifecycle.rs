//! The lifecycle tick.

use crate::WorkerError;
use chrono::Duration;
use netorch_domain::{
    Node, NodeId, NodeState, NodeTrigger, Phase, PhaseStatus, Provisioner, Timestamp,
};
use netorch_storage::nodes::{self, NodeChange, TransitionPlan};
use netorch_storage::{DbConnection, StorageError, write_transaction};
use std::collections::HashSet;

/// Most nodes one tick reads; the rest wait for the next tick (oldest state change first).
pub const MAX_NODES_PER_TICK: i64 = 200_000;

/// Most nodes one write transaction of a tick reads and moves: at about 10 µs a moved node
/// (docs/PERFORMANCE.md) SQLite's write lock is held some 50 ms at a time, so API writes and
/// telemetry wait at most that long behind a rollout of any size.
pub const LIFECYCLE_BATCH: i64 = 5_000;

/// How much of the fleet one lifecycle tick handles, and in what steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickLimits {
    /// Most nodes read per write transaction.
    pub batch: i64,
    /// Most nodes read per tick.
    pub max_nodes: i64,
    /// A pause after each full batch, before the next: SQLite does not queue writers, a writer
    /// waiting for the lock polls it (every 100 ms once it has waited a while), and a tick that
    /// began its next batch at once would keep it out until the tick ends.
    pub pause: std::time::Duration,
}

/// The default [`TickLimits::pause`].
pub const BATCH_PAUSE: std::time::Duration = std::time::Duration::from_millis(25);

impl Default for TickLimits {
    fn default() -> Self {
        TickLimits {
            batch: LIFECYCLE_BATCH,
            max_nodes: MAX_NODES_PER_TICK,
            pause: BATCH_PAUSE,
        }
    }
}

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

/// One pass of the lifecycle worker at `now` with the default [`TickLimits`]: reads the
/// in-flight nodes that are due (each node is scheduled for when its phase can first be over,
/// from the provisioner's [`earliest_completion`](Provisioner::earliest_completion)), decides
/// each with [`plan_transition`], and applies the decisions in bulk with one audit event each.
///
/// The due nodes are handled in batches of [`LIFECYCLE_BATCH`], each its own write transaction,
/// so no transaction of a tick is long whatever the number of due nodes. A node moves at most
/// once per tick, as if the tick were one transaction.
///
/// On SQLite each batch is one `BEGIN IMMEDIATE` transaction, so concurrent workers take
/// turns and each sees the other's result. On PostgreSQL the transitions are claimed with
/// `FOR UPDATE SKIP LOCKED` and guarded by the row version, so concurrent workers split the
/// nodes between them. Either way a node makes each transition once.
pub fn lifecycle_tick(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    now: Timestamp,
) -> Result<LifecycleTick, WorkerError> {
    lifecycle_tick_with(conn, provisioner, now, TickLimits::default())
}

/// [`lifecycle_tick`] with chosen limits (a benchmark compares batch sizes with it).
pub fn lifecycle_tick_with(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    now: Timestamp,
    limits: TickLimits,
) -> Result<LifecycleTick, WorkerError> {
    let mut tick = LifecycleTick::default();
    let mut after = None;
    // Nodes moved by this tick's earlier batches: one whose next phase is already due comes
    // round again further on, and waits for the next tick.
    let mut moved: HashSet<NodeId> = HashSet::new();
    let batch = limits.batch.max(1);
    while (tick.examined as i64) < limits.max_nodes {
        let limit = batch.min(limits.max_nodes - tick.examined as i64);
        let (examined, cursor, plans, applied) =
            write_transaction(conn, |conn| -> Result<_, StorageError> {
                let (candidates, cursor) = nodes::due_for_lifecycle(conn, now, after, limit)?;
                let plans: Vec<TransitionPlan> = candidates
                    .iter()
                    .filter(|node| !moved.contains(&node.id))
                    .filter_map(|node| plan_transition(node, provisioner, now))
                    .collect();
                let applied = nodes::apply_transitions(conn, &plans, now)?;
                Ok((candidates.len(), cursor, plans, applied))
            })?;
        log_failures(&plans, &applied);
        tick.examined += examined;
        tick.planned += plans.len();
        tick.applied += applied.len();
        moved.extend(applied);
        match cursor {
            Some(cursor) if examined as i64 == limit => after = Some(cursor),
            _ => break,
        }
        if (tick.examined as i64) < limits.max_nodes && !limits.pause.is_zero() {
            std::thread::sleep(limits.pause);
        }
    }
    Ok(tick)
}

/// Failures are what an operator acts on: one line each (the rest is the debug summary).
fn log_failures(plans: &[TransitionPlan], applied: &[NodeId]) {
    if !log::log_enabled!(log::Level::Info) || !plans.iter().any(|p| p.to() == NodeState::Failed) {
        return;
    }
    let applied: HashSet<_> = applied.iter().copied().collect();
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
