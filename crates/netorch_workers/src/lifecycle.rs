//! The lifecycle tick.

use crate::WorkerError;
use chrono::Duration;
use netorch_domain::{
    DeploymentId, Node, NodeId, NodeState, NodeStateCounts, NodeTrigger, Phase, PhaseStatus,
    Provisioner, RolloutPolicy, Timestamp,
};
use netorch_storage::deployments;
use netorch_storage::nodes::{self, NodeChange, Removal, TransitionPlan};
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
    /// Transitions (and removals of released nodes) decided.
    pub planned: usize,
    /// Transitions and removals written (the rest were taken by another worker first).
    pub applied: usize,
    /// The transitions written, counted by the state each node entered.
    pub entered: NodeStateCounts,
    /// Of those, phases that timed out (`phase_timeout_seconds`).
    pub timed_out: usize,
    /// Of those, automatic retries (`max_retries`).
    pub auto_retried: usize,
    /// The tick stopped at its limit of nodes with more due: the rest wait for the next.
    pub cut_short: bool,
}

impl LifecycleTick {
    /// Counts the plans of a batch that were written.
    fn count_applied(&mut self, plans: &[TransitionPlan], applied: &[NodeId]) {
        self.applied += applied.len();
        if plans.is_empty() {
            return;
        }
        let applied: HashSet<NodeId> = applied.iter().copied().collect();
        for plan in plans.iter().filter(|p| applied.contains(&p.node_id())) {
            self.entered.add(plan.to(), 1);
            match plan.trigger() {
                NodeTrigger::PhaseTimedOut => self.timed_out += 1,
                NodeTrigger::AutoRetry => self.auto_retried += 1,
                _ => {}
            }
        }
    }
}

/// What should happen to `node` at `now` under its deployment's `policy`, if anything: the
/// pure decision of the lifecycle.
///
/// - `PENDING` starts provisioning and gets its address (or fails without one); whether it
///   may start yet (`max_in_flight`, a pause) is decided before, by the caller.
/// - `PROVISIONING` and `CONFIGURING` move on when the provisioner says their phase is over,
///   or fail once the phase has taken longer than `phase_timeout_seconds`.
/// - `FAILED` goes back to `PENDING` when its automatic retry is due (the worker only reads
///   failed nodes whose retry is scheduled and due).
///
/// A node that fails gets its automatic retry scheduled, after the policy's backoff, while its
/// `max_retries` budget lasts.
pub fn plan_transition(
    node: &Node,
    provisioner: &dyn Provisioner,
    policy: &RolloutPolicy,
    now: Timestamp,
) -> Option<TransitionPlan> {
    let mut limit = None;
    let (trigger, change) = match node.state {
        NodeState::Pending => match provisioner.assign_address(node) {
            Ok(address) => (
                NodeTrigger::StartProvisioning,
                NodeChange {
                    ip_address: Some(address),
                    failure_reason: None,
                    actor: None,
                },
            ),
            Err(reason) => (NodeTrigger::ProvisioningFailed, failure(reason)),
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
                PhaseStatus::InProgress => {
                    let seconds = policy.phase_timeout_seconds?;
                    let deadline = node
                        .state_changed_at
                        .checked_add_signed(Duration::seconds(i64::from(seconds)))?;
                    if now < deadline {
                        return None;
                    }
                    limit = Some(seconds);
                    (
                        NodeTrigger::PhaseTimedOut,
                        failure(format!(
                            "{} timed out after {seconds} s",
                            node.state.as_str().to_lowercase()
                        )),
                    )
                }
                PhaseStatus::Succeeded => (succeeded, NodeChange::default()),
                PhaseStatus::Failed(reason) => (failed, failure(reason)),
            }
        }
        NodeState::Failed => {
            limit = Some(policy.max_retries);
            (NodeTrigger::AutoRetry, NodeChange::default())
        }
        // Removal is not a transition: see plan_removal.
        NodeState::Running | NodeState::Decommissioning => return None,
    };
    // Every trigger above is legal from the state it is chosen for; a refusal would mean the
    // row changed under us, and the node is simply looked at again next tick.
    let mut plan = TransitionPlan::new(node, trigger, change).ok()?;
    if let Some(limit) = limit {
        plan = plan.with_limit(limit);
    }
    let after = |wait: Duration| now.checked_add_signed(wait).unwrap_or(now);
    match plan.to() {
        // Come back when the next phase can first be over, or time out, and not before.
        NodeState::Provisioning | NodeState::Configuring => {
            let phase = if plan.to() == NodeState::Provisioning {
                Phase::Provisioning
            } else {
                Phase::Configuring
            };
            let mut wait = provisioner.earliest_completion(node, phase);
            if let Some(timeout) = policy.phase_timeout() {
                wait = wait.min(timeout);
            }
            Some(plan.with_check_after(after(wait)))
        }
        NodeState::Failed => match policy.retry_delay(node.attempt) {
            Some(backoff) => Some(plan.with_check_after(after(backoff))),
            None => Some(plan),
        },
        NodeState::Pending | NodeState::Running | NodeState::Decommissioning => Some(plan),
    }
}

/// Whether a `DECOMMISSIONING` node is released at `now` and can be removed: the pure decision
/// of the last step of its life. However the release ended it is removed (a failure is
/// recorded in its event): the deployment no longer wants the node.
pub fn plan_removal(node: &Node, provisioner: &dyn Provisioner, now: Timestamp) -> Option<Removal> {
    if node.state != NodeState::Decommissioning {
        return None;
    }
    match provisioner.phase_status(node, Phase::Decommissioning, now) {
        PhaseStatus::InProgress => None,
        PhaseStatus::Succeeded => Some(Removal::new(node, None)),
        PhaseStatus::Failed(reason) => Some(Removal::new(node, Some(reason))),
    }
}

/// The change that fails a node for `reason`.
fn failure(reason: String) -> NodeChange {
    NodeChange {
        ip_address: None,
        failure_reason: Some(reason),
        actor: None,
    }
}

/// One pass of the lifecycle worker at `now` with the default [`TickLimits`]:
///
/// 1. reads the nodes that are due (each node in a phase is scheduled for when its phase can
///    first be over or time out, from the provisioner's
///    [`earliest_completion`](Provisioner::earliest_completion); a failed node for its
///    automatic retry), decides each with [`plan_transition`], and applies the decisions in
///    bulk with one audit event each;
/// 2. then starts pending nodes, deployment by deployment, lowest id first, as many as each
///    deployment's rollout allows: all of them without `max_in_flight`, none while it is paused.
///
/// The work is done in batches of [`LIFECYCLE_BATCH`], each its own write transaction, so no
/// transaction of a tick is long whatever the number of nodes. A node moves at most once per
/// tick, as if the tick were one transaction.
///
/// On SQLite each batch is one `BEGIN IMMEDIATE` transaction, so concurrent workers take
/// turns and each sees the other's result. On PostgreSQL the transitions are claimed with
/// `FOR UPDATE SKIP LOCKED` and guarded by the row version, so concurrent workers split the
/// nodes between them, and the start of a deployment's pending nodes holds its row lock, so
/// two workers never start more than its `max_in_flight` between them. Either way a node makes
/// each transition once.
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
    let pause = |tick: &LifecycleTick| {
        if (tick.examined as i64) < limits.max_nodes && !limits.pause.is_zero() {
            std::thread::sleep(limits.pause);
        }
    };
    while (tick.examined as i64) < limits.max_nodes {
        let limit = batch.min(limits.max_nodes - tick.examined as i64);
        let (examined, cursor, plans, removals, applied) =
            write_transaction(conn, |conn| -> Result<_, StorageError> {
                let (candidates, cursor) = nodes::due_for_lifecycle(conn, now, after, limit)?;
                let ids: Vec<DeploymentId> =
                    candidates.iter().map(|node| node.deployment_id).collect();
                let policies = deployments::rollout_policies(conn, &ids)?;
                let plans: Vec<TransitionPlan> = candidates
                    .iter()
                    .filter(|node| !moved.contains(&node.id))
                    .filter_map(|node| {
                        let policy = policies
                            .get(&node.deployment_id)
                            .copied()
                            .unwrap_or_default();
                        plan_transition(node, provisioner, &policy, now)
                    })
                    .collect();
                let removals: Vec<Removal> = candidates
                    .iter()
                    .filter_map(|node| plan_removal(node, provisioner, now))
                    .collect();
                let mut applied = nodes::apply_transitions(conn, &plans, now)?;
                applied.extend(nodes::remove_decommissioned(conn, &removals, now)?);
                Ok((candidates.len(), cursor, plans, removals.len(), applied))
            })?;
        log_failures(&plans, &applied);
        tick.examined += examined;
        tick.planned += plans.len() + removals;
        tick.count_applied(&plans, &applied);
        moved.extend(applied);
        match cursor {
            Some(cursor) if examined as i64 == limit => {
                after = Some(cursor);
                tick.cut_short = tick.examined as i64 >= limits.max_nodes;
            }
            _ => break,
        }
        pause(&tick);
    }
    for deployment in deployments::with_nodes_to_start(conn)? {
        loop {
            let budget = limits.max_nodes - tick.examined as i64;
            if budget <= 0 {
                tick.cut_short = true;
                return Ok(tick);
            }
            let want = batch.min(budget);
            let (examined, full, plans, applied) =
                write_transaction(conn, |conn| -> Result<_, StorageError> {
                    start_pending(conn, provisioner, deployment, want, &moved, now)
                })?;
            log_failures(&plans, &applied);
            tick.examined += examined;
            tick.planned += plans.len();
            tick.count_applied(&plans, &applied);
            let none_moved = applied.is_empty();
            moved.extend(applied);
            if !full || none_moved {
                break;
            }
            pause(&tick);
        }
    }
    Ok(tick)
}

/// Starts up to `want` of `deployment`'s pending nodes, as many as its rollout allows now,
/// holding its row so that no other worker starts any at the same time. Returns the nodes
/// read, whether the batch was full (more may start), the plans and the nodes moved.
fn start_pending(
    conn: &mut DbConnection,
    provisioner: &dyn Provisioner,
    deployment: DeploymentId,
    want: i64,
    moved: &HashSet<NodeId>,
    now: Timestamp,
) -> Result<(usize, bool, Vec<TransitionPlan>, Vec<NodeId>), StorageError> {
    let nothing = Ok((0, false, Vec::new(), Vec::new()));
    let (found, counts) = match deployments::lock_for_change(conn, deployment) {
        Ok(found) => found,
        // Deleted since the tick listed it.
        Err(StorageError::DeploymentNotFound) => return nothing,
        Err(e) => return Err(e),
    };
    if found.paused_at.is_some() {
        return nothing;
    }
    let slots = i64::try_from(found.rollout.start_slots(&counts)).unwrap_or(i64::MAX);
    let limit = slots.min(want);
    if limit <= 0 {
        return nothing;
    }
    let candidates = nodes::pending(conn, deployment, limit)?;
    let plans: Vec<TransitionPlan> = candidates
        .iter()
        .filter(|node| !moved.contains(&node.id))
        .filter_map(|node| plan_transition(node, provisioner, &found.rollout, now))
        .collect();
    let applied = nodes::apply_transitions(conn, &plans, now)?;
    let full = candidates.len() as i64 == limit && limit == want;
    Ok((candidates.len(), full, plans, applied))
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
                deployment_id = plan.deployment().get(), node_id = plan.node_id().get();
                "node {} of deployment {} failed: {}",
                plan.node_id(),
                plan.deployment(),
                plan.failure_reason().unwrap_or("no reason given")
            );
        }
    }
}
